package device

import (
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
