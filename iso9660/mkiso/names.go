package mkiso

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
)

const (
	isoFileMax   = 30  // level 2: name + "." + extension
	isoExtMax    = 10  // our own cap, so that names keep a stem
	isoDirMax    = 31  // level 2 directory identifier
	jolietDirMax = 103 // mkisofs -joliet-long
	jolietExtra  = 2   // ";1"
)

// namer hands out identifiers that are unique within one directory.
type namer map[string]bool

func dchar(r rune) byte {
	switch {
	case r >= 'a' && r <= 'z':
		return byte(r - 'a' + 'A')
	case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
		return byte(r)
	}
	return '_'
}

func dchars(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteByte(dchar(r))
	}
	return b.String()
}

// unique calls mk(suffix) with "", "_1", "_2", … until the key it returns
// is unused, and returns the identifier that goes with it.
func (nm namer) unique(mk func(suffix string) (key string, id []byte)) []byte {
	for i := 0; ; i++ {
		suf := ""
		if i > 0 {
			suf = "_" + strconv.Itoa(i)
		}
		key, id := mk(suf)
		if !nm[key] {
			nm[key] = true
			return id
		}
	}
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:max(n, 0)]
	}
	return s
}

// iso returns a level-2 identifier for name: "NAME.EXT;1" for files,
// "NAME" for directories.
func (nm namer) iso(name string, dir bool) []byte {
	if dir {
		base := dchars(name)
		if base == "" {
			base = "_"
		}
		return nm.unique(func(suf string) (string, []byte) {
			id := trunc(base, isoDirMax-len(suf)) + suf
			return id, []byte(id)
		})
	}
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i+1:]
	}
	base, ext = dchars(base), trunc(dchars(ext), isoExtMax)
	if base == "" {
		base = "_"
	}
	return nm.unique(func(suf string) (string, []byte) {
		b := trunc(base, isoFileMax-1-len(ext)-len(suf)) + suf
		key := b
		if ext != "" {
			key += "." + ext
		}
		return key, []byte(b + "." + ext + ";1")
	})
}

func jolietRune(r rune) rune {
	switch {
	case r < 0x20, r > 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
		return '_'
	case strings.ContainsRune("*/:;?\\", r):
		return '_'
	}
	return r
}

// joliet returns a UCS-2BE Joliet identifier for name (";1" on files).
func (nm namer) joliet(name string, dir bool) []byte {
	var rs []rune
	for _, r := range name {
		rs = append(rs, jolietRune(r))
	}
	limit := jolietDirMax
	if !dir {
		limit -= jolietExtra
	}
	return nm.unique(func(suf string) (string, []byte) {
		n := min(len(rs), limit-len(suf))
		s := string(rs[:n]) + suf
		id := s
		if !dir {
			id += ";1"
		}
		return s, ucs2(id)
	})
}

func ucs2(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c>>8), byte(c)
	}
	return b
}

// isoLess orders identifiers as ECMA-119 9.3 asks: the name part padded
// with spaces, then the extension padded with spaces, then the version
// in descending order.
func isoLess(a, b []byte) bool {
	an, ae, av := splitID(a)
	bn, be, bv := splitID(b)
	if c := padCompare(an, bn); c != 0 {
		return c < 0
	}
	if c := padCompare(ae, be); c != 0 {
		return c < 0
	}
	return padCompare(av, bv) > 0
}

func splitID(id []byte) (name, ext, ver []byte) {
	name = id
	if i := bytes.IndexByte(name, ';'); i >= 0 {
		name, ver = name[:i], name[i+1:]
	}
	if i := bytes.IndexByte(name, '.'); i >= 0 {
		name, ext = name[:i], name[i+1:]
	}
	return
}

func padCompare(a, b []byte) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		ca, cb := byte(' '), byte(' ')
		if i < len(a) {
			ca = a[i]
		}
		if i < len(b) {
			cb = b[i]
		}
		if ca != cb {
			return int(ca) - int(cb)
		}
	}
	return 0
}
