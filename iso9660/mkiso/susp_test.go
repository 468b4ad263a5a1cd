package mkiso

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"
)

// decodeSL rebuilds a symlink target from SL entries. With perEntry the
// separator state is reset at every entry, as libarchive does; otherwise
// components are joined across entries as RRIP describes.
func decodeSL(entries [][]byte, perEntry bool) string {
	var b strings.Builder
	sep := ""
	for _, e := range entries {
		if perEntry {
			sep = ""
		}
		body := e[5:e[2]]
		for len(body) >= 2 {
			flags, n := body[0], int(body[1])
			text := string(body[2 : 2+n])
			body = body[2+n:]
			b.WriteString(sep)
			sep = "/"
			switch flags &^ 1 {
			case 0:
				b.WriteString(text)
				if flags&1 != 0 {
					sep = ""
				}
			case 2:
				b.WriteString(".")
			case 4:
				b.WriteString("..")
			case 8:
				b.WriteString("/")
				sep = ""
			}
		}
	}
	return b.String()
}

// TestSLEncoding: targets of every shape survive SL packing for both
// readings, and every entry fits its length byte.
func TestSLEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var targets []string
	for range 2000 {
		var parts []string
		for range 1 + r.IntN(12) {
			switch r.IntN(8) {
			case 0:
				parts = append(parts, ".")
			case 1:
				parts = append(parts, "..")
			default:
				parts = append(parts, strings.Repeat(string(rune('a'+r.IntN(26))), 1+r.IntN(300)))
			}
		}
		tg := strings.Join(parts, "/")
		if r.IntN(3) == 0 {
			tg = "/" + tg
		}
		targets = append(targets, tg)
	}
	// Boundaries exactly at component ends: components of 3 bytes pack
	// 250/5 = 50 per entry.
	targets = append(targets, strings.Repeat("abc/", 120)+"z", "/", ".", strings.Repeat("../", 200)+"x")
	for _, tg := range targets {
		ents := entriesSL(tg)
		for _, e := range ents {
			if len(e) > 255 || int(e[2]) != len(e) {
				t.Fatalf("entry of %d bytes", len(e))
			}
		}
		for _, perEntry := range []bool{false, true} {
			if got := decodeSL(ents, perEntry); got != tg {
				t.Fatalf("perEntry=%v: %d-byte target decodes to %d bytes:\n%q\n%q", perEntry, len(tg), len(got), tg, got)
			}
		}
	}
}

func TestSplitSU(t *testing.T) {
	mk := func(sizes ...int) [][]byte {
		var e [][]byte
		for _, s := range sizes {
			e = append(e, make([]byte, s))
		}
		return e
	}
	for _, tc := range []struct {
		sizes []int
		avail int
		want  string
	}{
		{[]int{44, 26, 20}, 200, "{3 90 [] []}"},
		{[]int{7, 44, 26, 237}, 220, "{3 105 [1] [237]}"},
		{[]int{44, 26, 255, 255, 255}, 180, "{2 98 [1 2] [283 510]}"},
	} {
		l := splitSU(mk(tc.sizes...), tc.avail, 512)
		if got := fmt.Sprint(l); got != tc.want {
			t.Errorf("%v in %d: %s, want %s", tc.sizes, tc.avail, got, tc.want)
		}
	}
}

func TestPosixMode(t *testing.T) {
	for m, want := range map[fs.FileMode]uint32{
		0o644:                  0o100644,
		fs.ModeDir | 0o755:     0o040755,
		fs.ModeSymlink | 0o777: 0o120777,
		fs.ModeDevice | fs.ModeCharDevice | 0o600: 0o020600,
		fs.ModeDevice | 0o660:                     0o060660,
		fs.ModeNamedPipe | 0o600:                  0o010600,
		fs.ModeSocket | 0o755:                     0o140755,
		fs.ModeDir | fs.ModeSticky | 0o777:        0o041777,
		fs.ModeSetuid | fs.ModeSetgid | 0o755:     0o106755,
	} {
		if got := posixMode(m); got != want {
			t.Errorf("%v: %o, want %o", m, got, want)
		}
	}
}
