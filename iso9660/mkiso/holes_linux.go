//go:build linux

package mkiso

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

const (
	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE
)

// holeFinder returns, for an *os.File, a function that gives the data
// region at or after off as [start, end) (start == size when only a hole
// remains), so that holes of sparse sources are skipped without reading.
func holeFinder(f fs.File, size int64) func(off int64) (start, end int64, ok bool) {
	of, isOS := f.(*os.File)
	if !isOS {
		return nil
	}
	return func(off int64) (int64, int64, bool) {
		start, err := of.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			return size, size, true
		}
		if err != nil {
			return 0, 0, false
		}
		end, err := of.Seek(start, seekHole)
		if err != nil {
			return 0, 0, false
		}
		return start, min(end, size), true
	}
}
