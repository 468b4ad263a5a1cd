//go:build !linux

package mkiso

import "io/fs"

// holeFinder is not available here: sparse sources are read in full.
func holeFinder(fs.File, int64) func(off int64) (start, end int64, ok bool) { return nil }
