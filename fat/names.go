package fat

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Errors of the write side. Every error a write operation returns is a
// *fs.PathError whose Err wraps one of these (or fs.ErrNotExist,
// fs.ErrExist, fs.ErrPermission, ErrNotDir, ErrCorrupt or a device error).
var (
	// ErrInvalidName: a name no FAT volume may hold, or that Windows
	// refuses (EINVAL).
	ErrInvalidName = errors.New("invalid file name")
	// ErrNameTooLong: a name over 255 UTF-16 units, or a path over
	// maxPathUnits (ENAMETOOLONG).
	ErrNameTooLong = errors.New("file name too long")
	// ErrNoSpace: no free cluster left, or a FAT12/16 root directory
	// without a free entry (ENOSPC).
	ErrNoSpace = errors.New("no space left on volume")
	// ErrNotEmpty: removing, or renaming over, a directory that is not
	// empty (ENOTEMPTY).
	ErrNotEmpty = errors.New("directory not empty")
	// ErrReadOnlyFS: a change to a volume mounted without
	// Options.Writable. It wraps fs.ErrPermission (EROFS for FUSE).
	ErrReadOnlyFS = fmt.Errorf("read-only file system: %w", fs.ErrPermission)
	// ErrIsDir: opening a directory as a file, or renaming a file over a
	// directory.
	ErrIsDir = errors.New("is a directory")
)

// maxPathUnits is the longest path a new name may end up at, in UTF-16
// units without the leading separator: 4095, so that every file stays
// reachable by path on Linux (PATH_MAX 4096 with the NUL), through the
// FUSE mount and host tools alike. Windows' old MAX_PATH (260) would
// refuse paths that mtools, the Linux vfat driver and Windows' own long
// path support store without complaint. (Existing deeper paths stay
// readable.)
const maxPathUnits = 4095

// checkName applies the rules for a new long name: Windows' (no control
// characters, none of "*/:<>?\|, no trailing dot or space, no reserved
// device name with or without an extension) and VFAT's (1..255 UTF-16
// units). Windows would silently strip trailing dots and spaces; we refuse
// them instead, so that the name asked for is the name stored.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidName)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Errorf("%w: character %q is not allowed", ErrInvalidName, r)
		}
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return fmt.Errorf("%w: %q ends with a dot or a space", ErrInvalidName, name)
	}
	if reservedDevice(name) {
		return fmt.Errorf("%w: %q is a reserved device name", ErrInvalidName, name)
	}
	if n := len(utf16.Encode([]rune(name))); n > maxLFNSlots*lfnChars-5 {
		return fmt.Errorf("%w: %d UTF-16 units (at most 255)", ErrNameTooLong, n)
	}
	return nil
}

// checkPathLen refuses a new path longer than maxPathUnits.
func checkPathLen(p string) error {
	if n := len(utf16.Encode([]rune(p))); n > maxPathUnits {
		return fmt.Errorf("%w: path of %d UTF-16 units (at most %d)", ErrNameTooLong, n, maxPathUnits)
	}
	return nil
}

// reservedDevice reports whether name is one of DOS's device names (CON,
// PRN, AUX, NUL, COM1-9, LPT1-9), with or without an extension.
func reservedDevice(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) && base[3] >= '1' && base[3] <= '9' {
		return true
	}
	return false
}

// shortChar reports whether the OEM byte c may appear in a short name
// (fatgen103 "FAT Directory Structure": not below 0x20, not 0x22, 0x2A-0x2C,
// 0x2E, 0x2F, 0x3A-0x3F, 0x5B-0x5D, 0x7C, and no lower case letter).
func shortChar(c byte) bool {
	if c < 0x20 || c == 0x7F {
		return false
	}
	if c >= 0x80 {
		return true
	}
	if c >= 'a' && c <= 'z' {
		return false
	}
	return !strings.ContainsRune(`"*+,./:;<=>?[\]| `, rune(c))
}

// shortPlan is how a new long name is stored.
type shortPlan struct {
	sfn     [11]byte
	ntres   uint8 // NT lower-case flags
	needLFN bool
}

// plainShort reports whether name can be stored as a short entry alone:
// ASCII, BASE of 1-8 and EXT of 0-3 short-name characters, one dot at most,
// and each part either all upper or all lower case (the NT flags 0x08 and
// 0x10 then record lower case), as Windows NT does for "readme.txt".
func plainShort(name string) (shortPlan, bool) {
	var p shortPlan
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return p, false
		}
	}
	base, ext, hasDot := strings.Cut(name, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") || (hasDot && ext == "") {
		return p, false
	}
	caseOf := func(s string) (lower, ok bool) {
		up, low := false, false
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case c >= 'a' && c <= 'z':
				low = true
				c -= 'a' - 'A'
			case c >= 'A' && c <= 'Z':
				up = true
			}
			if !shortChar(c) {
				return false, false
			}
		}
		return low, !(up && low)
	}
	lb, ok1 := caseOf(base)
	le, ok2 := caseOf(ext)
	if !ok1 || !ok2 {
		return p, false
	}
	for i := range p.sfn {
		p.sfn[i] = ' '
	}
	copy(p.sfn[:8], strings.ToUpper(base))
	copy(p.sfn[8:], strings.ToUpper(ext))
	if lb {
		p.ntres |= ntLowerBase
	}
	if le {
		p.ntres |= ntLowerExt
	}
	if p.sfn[0] == nameFree {
		p.sfn[0] = nameKanjiE5
	}
	return p, true
}

// basisName is fatgen103's "Basis-Name Generation Algorithm": the name
// upper-cased and converted to the OEM code page (a character it lacks, or
// one of + , ; = [ ], becomes '_' and makes the conversion lossy), spaces
// and leading periods stripped, up to 8 characters before the first
// remaining period as the base and up to 3 after the last as the extension.
func basisName(cp *charmap.Charmap, name string) (base, ext []byte, lossy bool) {
	conv := func(s string) []byte {
		var out []byte
		for _, r := range strings.ToUpper(s) {
			if r == ' ' {
				lossy = true
				continue
			}
			b, ok := cp.EncodeRune(r)
			if !ok || !shortChar(b) || r == '.' {
				b, lossy = '_', true
			}
			out = append(out, b)
		}
		return out
	}
	trimmed := strings.TrimLeft(name, ". ")
	if trimmed != name {
		lossy = true
	}
	stem, extPart := trimmed, ""
	if i := strings.LastIndexByte(trimmed, '.'); i >= 0 {
		stem, extPart = trimmed[:i], trimmed[i+1:]
	}
	b := conv(strings.ReplaceAll(stem, ".", ""))
	if strings.Contains(stem, ".") {
		lossy = true
	}
	if len(b) > 8 {
		b, lossy = b[:8], true
	}
	e := conv(extPart)
	if len(e) > 3 {
		e, lossy = e[:3], true
	}
	if len(b) == 0 {
		b = []byte{'_'}
	}
	return b, e, lossy
}

// nameHash is the 16-bit hash of a long name used by the hashed short-name
// form: FNV-1a over its UTF-16 units, folded to 16 bits. (Windows uses an
// undocumented checksum of its own for this form; any stable hash keeps
// the names unique, which is what matters.)
func nameHash(name string) uint16 {
	h := uint32(2166136261)
	for _, u := range utf16.Encode([]rune(name)) {
		h ^= uint32(u & 0xFF)
		h *= 16777619
		h ^= uint32(u >> 8)
		h *= 16777619
	}
	return uint16(h>>16) ^ uint16(h)
}

// planName decides how a new name is stored in a directory whose short
// names are taken (the 11 raw bytes of each). The rule:
//   - a name that is a plain 8.3 name in one case per part is stored as
//     that short entry alone, with the NT lower-case flags;
//   - otherwise a long-name entry carries the name, and the short name is
//     the basis name with a numeric tail: BASE~1 … BASE~4 (the base cut
//     so that base and tail fit in 8), then, as Windows does once those
//     are taken, the hashed form: the first 2 base characters, 4 hex
//     digits of nameHash and ~1, ~2, …;
//   - a basis name that is not lossy and fits 8.3 exactly (the long name
//     differs only in mixed case) is tried first without a tail.
func planName(cp *charmap.Charmap, name string, taken func([11]byte) bool) (shortPlan, error) {
	if p, ok := plainShort(name); ok && !taken(p.sfn) {
		return p, nil
	}
	base, ext, lossy := basisName(cp, name)
	mk := func(b []byte) [11]byte {
		var s [11]byte
		for i := range s {
			s[i] = ' '
		}
		copy(s[:8], b)
		copy(s[8:], ext)
		if s[0] == nameFree {
			s[0] = nameKanjiE5
		}
		return s
	}
	p := shortPlan{needLFN: true}
	if !lossy {
		if s := mk(base); !taken(s) {
			p.sfn = s
			return p, nil
		}
	}
	withTail := func(b []byte, n int) [11]byte {
		tail := "~" + strconv.Itoa(n)
		keep := min(len(b), 8-len(tail))
		return mk(append(append([]byte(nil), b[:keep]...), tail...))
	}
	for n := 1; n <= 4; n++ {
		if s := withTail(base, n); !taken(s) {
			p.sfn = s
			return p, nil
		}
	}
	hb := append([]byte(nil), base[:min(2, len(base))]...)
	hb = append(hb, fmt.Sprintf("%04X", nameHash(name))...)
	for n := 1; n < 1000000; n++ {
		if s := withTail(hb, n); !taken(s) {
			p.sfn = s
			return p, nil
		}
	}
	return p, fmt.Errorf("%w: no free short name for %q", ErrInvalidName, name)
}
