//go:build linux

package device

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// blockDeviceGeometry asks the kernel for a block device's logical sector
// size and capacity.
func blockDeviceGeometry(f *os.File) (sectorSize int, size int64, err error) {
	fd := int(f.Fd())
	ss, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
	if err != nil {
		return 0, 0, fmt.Errorf("BLKSSZGET: %w", err)
	}
	var sz uint64
	if err := ioctlGetUint64(fd, unix.BLKGETSIZE64, &sz); err != nil {
		return 0, 0, fmt.Errorf("BLKGETSIZE64: %w", err)
	}
	if !ValidSectorSize(ss) {
		return 0, 0, fmt.Errorf("unsupported logical sector size %d", ss)
	}
	return ss, int64(sz), nil
}

// LastSession returns the first sector (in 2048-byte CD sectors) of the last
// session of a CD-ROM drive's disc, through the CDROMMULTISESSION ioctl. It
// returns 0 for single-session discs and for devices that are not CD drives.
func LastSession(d *File) int64 {
	if !d.blockDev {
		return 0
	}
	// struct cdrom_multisession { union cdrom_addr addr; __u8 xa_flag; __u8 addr_format; }
	var ms [8]byte
	ms[5] = 0x01 // CDROM_LBA
	if err := ioctlPtr(int(d.f.Fd()), 0x5310 /* CDROMMULTISESSION */, ms[:]); err != nil {
		return 0
	}
	if ms[4] == 0 { // xa_flag: multisession is legal only on XA discs
		return 0
	}
	lba := int64(int32(uint32(ms[0]) | uint32(ms[1])<<8 | uint32(ms[2])<<16 | uint32(ms[3])<<24))
	if lba < 0 {
		return 0
	}
	return lba
}
