package device

import (
	"slices"
	"testing"
)

func TestRanges(t *testing.T) {
	var rs []Range
	for _, r := range [][2]int64{{0, 10}, {10, 5}, {20, 0}, {30, 4}, {34, 1}} {
		rs = AppendRange(rs, r[0], r[1])
	}
	if want := []Range{{0, 15}, {30, 5}}; !slices.Equal(rs, want) {
		t.Errorf("AppendRange: %v, want %v", rs, want)
	}
	w := Widen([]Range{{1030, 10}, {0, 1}, {-5, 3}, {100, 0}, {511, 2}, {2048, 512}}, 512)
	if want := []Range{{0, 1536}, {2048, 512}}; !slices.Equal(w, want) {
		t.Errorf("Widen: %v, want %v", w, want)
	}
	// An object in two extents, 1000-1999 and 5000-5999 of the medium;
	// bad: 1500-2499 and 4000-5099.
	lost := LostIn([]Range{{1000, 1000}, {5000, 1000}}, []Range{{1500, 1000}, {4000, 1100}})
	if want := []Range{{500, 600}}; !slices.Equal(lost, want) {
		t.Errorf("LostIn: %v, want %v (the two losses touch in the object)", lost, want)
	}
	if s := SectorList([]int64{3, 7, 8, 9, 12}); s != "3, 7-9, 12" {
		t.Errorf("SectorList: %q", s)
	}
}

func TestOverlaps(t *testing.T) {
	bad := []Range{{Off: 100, Len: 50}, {Off: 400, Len: 10}}
	for _, c := range []struct {
		off, n int64
		want   bool
	}{{0, 100, false}, {0, 101, true}, {149, 1, true}, {150, 250, false}, {150, 251, true}, {410, 1000, false}, {120, 0, false}} {
		if got := Overlaps(bad, c.off, c.n); got != c.want {
			t.Errorf("Overlaps(%d, +%d) = %v, want %v", c.off, c.n, got, c.want)
		}
	}
}
