package device

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Range arithmetic shared by the drivers' damage reports, salvage and the
// kernel-copy fast paths.

// AppendRange appends [off, off+n) to rs, a list built in increasing order,
// merging it into the last range when the two touch. n <= 0 appends
// nothing.
func AppendRange(rs []Range, off, n int64) []Range {
	if n <= 0 {
		return rs
	}
	if k := len(rs) - 1; k >= 0 && rs[k].End() == off {
		rs[k].Len += n
		return rs
	}
	return append(rs, Range{Off: off, Len: n})
}

// Widen rounds each range out to whole units (sectors) and returns them
// sorted, with overlapping and touching ranges merged. Empty or negative
// ranges are dropped.
func Widen(rs []Range, unit int64) []Range {
	var w []Range
	for _, r := range rs {
		if r.Len <= 0 || r.Off < 0 {
			continue
		}
		lo := r.Off / unit * unit
		hi := (r.End() + unit - 1) / unit * unit
		w = append(w, Range{Off: lo, Len: hi - lo})
	}
	slices.SortFunc(w, func(a, b Range) int {
		switch {
		case a.Off < b.Off:
			return -1
		case a.Off > b.Off:
			return 1
		}
		return 0
	})
	var out []Range
	for _, r := range w {
		if k := len(out) - 1; k >= 0 && r.Off <= out[k].End() {
			out[k].Len = max(out[k].End(), r.End()) - out[k].Off
			continue
		}
		out = append(out, r)
	}
	return out
}

// LostIn maps the parts of bad (sorted, merged ranges of a medium, as
// Widen returns them) that fall in ext (an object's extents on the medium,
// in the object's order) to byte ranges of the object.
func LostIn(ext, bad []Range) []Range {
	var out []Range
	var pos int64 // object offset of the current extent
	for _, e := range ext {
		i, _ := slices.BinarySearchFunc(bad, e.Off, func(b Range, off int64) int {
			if b.End() <= off {
				return -1
			}
			return 1
		})
		for ; i < len(bad) && bad[i].Off < e.End(); i++ {
			lo, hi := max(bad[i].Off, e.Off), min(bad[i].End(), e.End())
			out = AppendRange(out, pos+lo-e.Off, hi-lo)
		}
		pos += e.Len
	}
	return out
}

// Overlaps reports whether [off, off+n) meets any of bad (sorted, merged
// ranges, as Widen returns them).
func Overlaps(bad []Range, off, n int64) bool { return n > 0 && firstBad(bad, off, n) >= 0 }

// SectorList spells sorted sector numbers with runs collapsed: "7, 9-11".
func SectorList(secs []int64) string {
	var b strings.Builder
	for i := 0; i < len(secs); {
		j := i
		for j+1 < len(secs) && secs[j+1] == secs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", secs[i], secs[j])
		} else {
			fmt.Fprintf(&b, "%d", secs[i])
		}
		i = j + 1
	}
	return b.String()
}

// Damage is one object that bad areas of a medium hit, as the drivers'
// damage walks report it: a file, a directory, or a piece of metadata.
type Damage struct {
	Path string // "/DIR/FILE" for files and directories; a name such as "<FAT 2>" for metadata
	Kind string // "file", "dir" or "metadata"
	Size int64  // bytes of the object: a file's size, a directory's allocation or length, a metadata area's length
	// Ranges are the lost bytes: offsets in the file or directory, or
	// byte offsets on the volume for metadata.
	Ranges []Range
	// LostSectors counts a directory's unreadable sectors; LostEntries
	// the most entries they can have held (the driver says how it
	// counts): which ones cannot be known.
	LostSectors, LostEntries int64
	Note                     string // what the loss means, where that is not plain
}

// DirDamageError reports a directory that a driver could read only in
// part: some of its sectors could not be read, or (FAT) its cluster chain
// could not be followed to its end. The entries of the sectors that were
// read are listed all the same. It unwraps to the errors behind it, so
// that a bad sector matches ErrBadSector.
type DirDamageError struct {
	// Sectors are the unreadable sectors, numbered as the device's errors
	// number them (absolute on the medium the user named).
	Sectors []int64
	// Lost are the byte ranges of the directory (offsets in it) that could
	// not be read.
	Lost []Range
	// Err is the first error reading a sector, nil if every sector found
	// was read.
	Err error
	// Rest is set when the directory's cluster chain could not be followed
	// past what was read (a FAT sector that cannot be read): the rest of
	// the directory, and its length, are unknown.
	Rest error
}

func (e *DirDamageError) Error() string {
	if e.Err == nil {
		return "directory damaged: its cluster chain cannot be followed: " + e.Rest.Error()
	}
	msg := "directory damaged: " + e.Err.Error()
	if len(e.Sectors) > 1 {
		msg += " (unreadable sectors: " + SectorList(e.Sectors) + ")"
	}
	if e.Rest != nil {
		msg += "; the rest of it cannot be found: " + e.Rest.Error()
	}
	return msg
}

func (e *DirDamageError) Unwrap() []error {
	var out []error
	for _, err := range []error{e.Err, e.Rest} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// LostRanges returns the byte ranges of the directory that could not be
// read, as offsets in the directory.
func (e *DirDamageError) LostRanges() []Range { return slices.Clone(e.Lost) }

// Add records that reading sector sec (the one err names, if it names one),
// which held the directory's bytes [off, off+n), failed with err.
func (e *DirDamageError) Add(err error, sec, off, n int64) {
	if e.Err == nil {
		e.Err = err
	}
	var se *SectorError
	if errors.As(err, &se) {
		sec = se.Sector
	}
	e.Sectors = append(e.Sectors, sec)
	e.Lost = AppendRange(e.Lost, off, n)
}
