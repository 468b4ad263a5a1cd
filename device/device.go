// Package device is the bottom layer of mediafs: sector-addressed media.
//
// A Device is a medium seen as a run of equal-sized sectors: an image file, a
// Linux block device, a byte slice in memory, a window onto part of another
// device (a partition), or a wrapper that injects faults. Every layer above
// addresses it in whole sectors: the offset and length of each ReadAt and
// WriteAt are multiples of SectorSize(). Implementations over byte-addressable
// storage accept other requests too, but the Strict wrapper refuses them, and
// the tests run the drivers through it so that nothing above this layer
// relies on byte addressing (the lesson of Microsoft KB Q142687, where CDFS
// issued reads the medium could not serve).
//
// Sector sizes follow the medium: 512…4096 bytes for disks (magneto-optical
// disks use 1024 and 2048, 4Kn drives 4096), 2048 for CD-ROM. Image files have
// no sector size of their own; the root package infers one from the file
// system and presents the image through View.
//
// A medium is always a whole number of sectors, as a real disc or disk is: an
// image file whose length is not a multiple of the sector size reads as if its
// missing tail were zeros. Reads and writes beyond the last sector fail.
//
// Errors are *SectorError values that name the first sector of the failed
// request, counted from the start of the medium the user named (a Window does
// not renumber them), so that a ddrescue user can re-read exactly those
// sectors. Errors from the medium itself unwrap to ErrBadSector.
package device

import (
	"errors"
	"fmt"
	"io"
)

// Device is a sector-addressed medium.
type Device interface {
	io.ReaderAt
	io.WriterAt // read-only devices return an error wrapping ErrReadOnly
	// SectorSize is the size of the medium's addressable unit in bytes:
	// 512, 1024, 2048 or 4096.
	SectorSize() int
	// Size is the medium's length in bytes, a multiple of SectorSize().
	Size() int64
	// Sync makes completed writes durable.
	Sync() error
	// Close releases the medium. Further calls fail with ErrClosed.
	Close() error
}

var (
	// ErrBadSector marks a sector the medium could not read or write.
	ErrBadSector = errors.New("bad sector")
	// ErrReadOnly is returned by writes to a device opened read-only.
	ErrReadOnly = errors.New("read-only medium")
	// ErrOutOfRange is returned by requests that reach past the last sector.
	ErrOutOfRange = errors.New("beyond the end of the medium")
	// ErrUnaligned is returned by Strict for requests that do not cover
	// whole sectors.
	ErrUnaligned = errors.New("request not aligned to whole sectors")
	// ErrShortIO is returned when the medium transferred fewer bytes than
	// asked without saying why.
	ErrShortIO = errors.New("short transfer")
	// ErrClosed is returned by a device used after Close.
	ErrClosed = errors.New("device is closed")
	// ErrTimeout is returned when a medium does not answer within the
	// device's I/O timeout.
	ErrTimeout = errors.New("medium did not answer in time")
)

// SectorError reports a failed transfer and the sector where it failed.
// Its message reads "sector N: cause"; the driver above adds the operation
// and the path (fs.PathError), giving e.g.
// "read /PHOTOS/IMG_0042.JPG: sector 183204: bad sector".
type SectorError struct {
	Op     string // "read" or "write"
	Sector int64  // first sector of the failed request, absolute on the medium
	Err    error
}

func (e *SectorError) Error() string { return fmt.Sprintf("sector %d: %v", e.Sector, e.Err) }
func (e *SectorError) Unwrap() error { return e.Err }

// IsMediaError reports whether err came from the medium (a bad sector, a
// timeout or a short transfer) rather than from a bad request.
func IsMediaError(err error) bool {
	return errors.Is(err, ErrBadSector) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrShortIO)
}

// ValidSectorSize reports whether n is a sector size mediafs supports.
func ValidSectorSize(n int) bool {
	return n == 512 || n == 1024 || n == 2048 || n == 4096
}

// checkRange validates a request of n bytes at off against a medium of the
// given size. It does not demand alignment (see Strict).
func checkRange(op string, off int64, n int, size int64, sectorSize int) error {
	if off < 0 || off > size || int64(n) > size-off {
		sec := off / int64(sectorSize)
		if off < 0 {
			sec = 0
		}
		return &SectorError{Op: op, Sector: sec, Err: ErrOutOfRange}
	}
	return nil
}

// roundUp rounds n up to a multiple of unit (a power of two).
func roundUp(n int64, unit int) int64 {
	u := int64(unit)
	return (n + u - 1) / u * u
}
