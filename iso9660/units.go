package iso9660

// This file is the one place where logical blocks, bytes and 2048-byte
// sectors are converted into one another (ECMA-119 6.1.2 logical sector,
// 6.2.2 logical block).

// sectorSize is the logical sector size of a CD (ECMA-119 6.1.2): the unit of
// device I/O, of volume descriptor positions and of the rule that directory
// records do not cross a boundary.
const sectorSize = 2048

// geometry converts between a volume's logical blocks, bytes and sectors.
type geometry struct {
	blockSize int64 // logical block size from the PVD: 512, 1024 or 2048
}

// validBlockSize reports whether n is a logical block size this package reads
// (ECMA-119 6.2.2: 2^(n+9), not larger than the 2048-byte logical sector).
func validBlockSize(n int) bool { return n == 512 || n == 1024 || n == 2048 }

// blockToByte returns the byte offset of logical block b.
func (g geometry) blockToByte(b int64) int64 { return b * g.blockSize }

// roundUpToBlock rounds a byte count up to whole logical blocks.
func (g geometry) roundUpToBlock(n int64) int64 {
	return (n + g.blockSize - 1) / g.blockSize * g.blockSize
}

// sectorToByte returns the byte offset of 2048-byte sector s.
func sectorToByte(s int64) int64 { return s * sectorSize }

// byteToSector returns the 2048-byte sector that holds byte off.
func byteToSector(off int64) int64 { return off / sectorSize }

// sectorFloor rounds a byte offset down to a sector boundary.
func sectorFloor(off int64) int64 { return off / sectorSize * sectorSize }

// sectorCeil rounds a byte offset up to a sector boundary.
func sectorCeil(off int64) int64 { return (off + sectorSize - 1) / sectorSize * sectorSize }
