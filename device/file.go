package device

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
)

// Options control how Open opens a medium.
type Options struct {
	// ReadOnly opens the medium without write access; writes then fail
	// with ErrReadOnly.
	ReadOnly bool
	// SectorSize overrides the sector size. Zero means: the logical sector
	// size a block device reports, or 512 for an image file (the root
	// package then re-presents the image through View with the size the
	// file system implies).
	SectorSize int
}

// File is an image file or a block device.
type File struct {
	f          *os.File
	name       string
	sectorSize int
	size       int64        // whole sectors
	dataSize   atomic.Int64 // bytes actually present (image files may end mid-sector)
	readOnly   bool
	blockDev   bool
	closed     atomic.Bool
}

// Open opens an image file or a block device. For a Linux block device the
// logical sector size and the capacity come from the BLKSSZGET and
// BLKGETSIZE64 ioctls.
func Open(path string, opts Options) (*File, error) {
	flag := os.O_RDWR
	if opts.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	d := &File{f: f, name: path, readOnly: opts.ReadOnly}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		ss, size, err := blockDeviceGeometry(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		d.blockDev = true
		d.sectorSize = ss
		d.dataSize.Store(size)
	case fi.Mode().IsRegular():
		d.sectorSize = 512
		d.dataSize.Store(fi.Size())
	default:
		f.Close()
		return nil, fmt.Errorf("%s: not an image file or a block device", path)
	}
	if opts.SectorSize != 0 {
		if !ValidSectorSize(opts.SectorSize) {
			f.Close()
			return nil, fmt.Errorf("%s: unsupported sector size %d (want 512, 1024, 2048 or 4096)", path, opts.SectorSize)
		}
		if d.blockDev && opts.SectorSize%d.sectorSize != 0 {
			f.Close()
			return nil, fmt.Errorf("%s: sector size %d is not a multiple of the device's %d", path, opts.SectorSize, d.sectorSize)
		}
		d.sectorSize = opts.SectorSize
	}
	d.size = roundUp(d.dataSize.Load(), d.sectorSize)
	return d, nil
}

// Name is the path the device was opened from.
func (d *File) Name() string { return d.name }

// IsBlockDevice reports whether the medium is a block device rather than an
// image file.
func (d *File) IsBlockDevice() bool { return d.blockDev }

// OSFile returns the underlying file, for ioctls.
func (d *File) OSFile() *os.File { return d.f }

func (d *File) SectorSize() int { return d.sectorSize }
func (d *File) Size() int64     { return d.size }

func (d *File) ReadAt(p []byte, off int64) (int, error) {
	if d.closed.Load() {
		return 0, &SectorError{Op: "read", Sector: off / int64(d.sectorSize), Err: ErrClosed}
	}
	if err := checkRange("read", off, len(p), d.size, d.sectorSize); err != nil {
		return 0, err
	}
	want := len(p)
	if avail := d.dataSize.Load() - off; avail < int64(want) {
		// The image ends mid-sector: the missing tail reads as zeros.
		if avail < 0 {
			avail = 0
		}
		clear(p[avail:])
		want = int(avail)
	}
	n, err := d.f.ReadAt(p[:want], off)
	if n == want {
		return len(p), nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = ErrShortIO // the file shrank under us
	}
	return n, &SectorError{Op: "read", Sector: (off + int64(n)) / int64(d.sectorSize), Err: mediaError(err)}
}

func (d *File) WriteAt(p []byte, off int64) (int, error) {
	if d.closed.Load() {
		return 0, &SectorError{Op: "write", Sector: off / int64(d.sectorSize), Err: ErrClosed}
	}
	if d.readOnly {
		return 0, &SectorError{Op: "write", Sector: off / int64(d.sectorSize), Err: ErrReadOnly}
	}
	if err := checkRange("write", off, len(p), d.size, d.sectorSize); err != nil {
		return 0, err
	}
	n, err := d.f.WriteAt(p, off)
	if err != nil {
		return n, &SectorError{Op: "write", Sector: (off + int64(n)) / int64(d.sectorSize), Err: mediaError(err)}
	}
	d.grewTo(off + int64(n))
	return n, nil
}

// grewTo notes that the bytes up to end are present now (concurrent
// writers may extend the file at once).
func (d *File) grewTo(end int64) {
	for {
		cur := d.dataSize.Load()
		if end <= cur || d.dataSize.CompareAndSwap(cur, end) {
			return
		}
	}
}

func (d *File) Sync() error {
	if d.closed.Load() {
		return ErrClosed
	}
	if d.readOnly {
		return nil
	}
	return d.f.Sync()
}

func (d *File) Close() error {
	if d.closed.Swap(true) {
		return ErrClosed
	}
	return d.f.Close()
}

// mediaError maps an operating-system I/O error to ErrBadSector while
// keeping the original text.
func mediaError(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) && (errno == syscall.EIO || errno == syscall.ENXIO || errno == syscall.EMEDIUMTYPE || errno == syscall.ENOMEDIUM) {
		return fmt.Errorf("%w (%v)", ErrBadSector, errno)
	}
	return err
}
