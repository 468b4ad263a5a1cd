package fat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// Directory entry constants (fatgen103 "FAT Directory Structure").
const (
	dirEntrySize = 32

	attrReadOnly  = 0x01
	attrHidden    = 0x02
	attrSystem    = 0x04
	attrVolumeID  = 0x08
	attrDirectory = 0x10
	attrArchive   = 0x20
	attrLongName  = attrReadOnly | attrHidden | attrSystem | attrVolumeID // 0x0F
	attrLongMask  = 0x3F

	nameFree    = 0xE5 // name[0]: the entry is free (deleted)
	nameEnd     = 0x00 // name[0]: free, and so are all that follow
	nameKanjiE5 = 0x05 // name[0]: stands for a real leading 0xE5

	ntLowerBase = 0x08 // NTRes: the base name is shown in lower case
	ntLowerExt  = 0x10 // NTRes: the extension is shown in lower case

	maxDirEntries = 65536 // fatgen103: a directory holds at most 65536 entries
)

// dirEntry is the 32-byte short directory entry: fatgen103 "FAT Directory
// Structure".
type dirEntry struct {
	Name         [11]byte // 0: 8.3 name, space padded
	Attr         uint8    // 11
	NTRes        uint8    // 12: NT lower-case flags
	CrtTimeTenth uint8    // 13: 0..199, units of 10 ms
	CrtTime      uint16   // 14
	CrtDate      uint16   // 16
	LstAccDate   uint16   // 18
	FstClusHI    uint16   // 20 (FAT32)
	WrtTime      uint16   // 22
	WrtDate      uint16   // 24
	FstClusLO    uint16   // 26
	FileSize     uint32   // 28
}

func decodeDirEntry(p []byte) dirEntry {
	le := binary.LittleEndian
	var e dirEntry
	copy(e.Name[:], p[0:11])
	e.Attr = p[11]
	e.NTRes = p[12]
	e.CrtTimeTenth = p[13]
	e.CrtTime = le.Uint16(p[14:])
	e.CrtDate = le.Uint16(p[16:])
	e.LstAccDate = le.Uint16(p[18:])
	e.FstClusHI = le.Uint16(p[20:])
	e.WrtTime = le.Uint16(p[22:])
	e.WrtDate = le.Uint16(p[24:])
	e.FstClusLO = le.Uint16(p[26:])
	e.FileSize = le.Uint32(p[28:])
	return e
}

func (e *dirEntry) encode(p []byte) {
	le := binary.LittleEndian
	copy(p[0:11], e.Name[:])
	p[11] = e.Attr
	p[12] = e.NTRes
	p[13] = e.CrtTimeTenth
	le.PutUint16(p[14:], e.CrtTime)
	le.PutUint16(p[16:], e.CrtDate)
	le.PutUint16(p[18:], e.LstAccDate)
	le.PutUint16(p[20:], e.FstClusHI)
	le.PutUint16(p[22:], e.WrtTime)
	le.PutUint16(p[24:], e.WrtDate)
	le.PutUint16(p[26:], e.FstClusLO)
	le.PutUint32(p[28:], e.FileSize)
}

// cluster is the entry's first cluster. FstClusHI counts only on FAT32
// (on FAT12/16 it holds OS/2 extended-attribute handles).
func (e *dirEntry) cluster(fatType int) uint32 {
	if fatType == fat32 {
		return uint32(e.FstClusHI)<<16 | uint32(e.FstClusLO)
	}
	return uint32(e.FstClusLO)
}

func (e *dirEntry) setCluster(c uint32) {
	e.FstClusHI = uint16(c >> 16)
	e.FstClusLO = uint16(c)
}

func (e *dirEntry) isLFN() bool   { return e.Attr&attrLongMask == attrLongName }
func (e *dirEntry) isLabel() bool { return e.Attr&(attrDirectory|attrVolumeID) == attrVolumeID }
func (e *dirEntry) isDir() bool   { return e.Attr&(attrDirectory|attrVolumeID) == attrDirectory }

// isDot reports whether the entry is "." or "..".
func (e *dirEntry) isDot() bool {
	return string(e.Name[:]) == ".          " || string(e.Name[:]) == "..         "
}

// shortNameChecksum is the checksum of an 11-byte short name that every
// long-name slot carries (fatgen103 "ChkSum"): rotate right, then add.
func shortNameChecksum(name [11]byte) uint8 {
	var sum uint8
	for _, c := range name {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// lfnEntry is one long-name slot: fatgen103 "FAT Long Directory Entries".
// Each holds 13 UTF-16 code units; the slots precede the short entry in
// reverse order, the first stored one carrying lfnLast in its ordinal.
type lfnEntry struct {
	Ord       uint8      // 0: 1..20, with lfnLast on the last slot
	Name1     [5]uint16  // 1
	Attr      uint8      // 11: attrLongName
	Type      uint8      // 12: 0
	Chksum    uint8      // 13: shortNameChecksum of the short entry
	Name2     [6]uint16  // 14
	FstClusLO uint16     // 26: 0
	Name3     [2]uint16  // 28
	chars     [13]uint16 // Name1, Name2, Name3 in order
}

const (
	lfnLast     = 0x40
	lfnOrdMask  = 0x1F
	lfnChars    = 13
	maxLFNSlots = 20 // 255 characters
)

func decodeLFN(p []byte) lfnEntry {
	le := binary.LittleEndian
	var l lfnEntry
	l.Ord = p[0]
	for i := range l.Name1 {
		l.Name1[i] = le.Uint16(p[1+2*i:])
	}
	l.Attr, l.Type, l.Chksum = p[11], p[12], p[13]
	for i := range l.Name2 {
		l.Name2[i] = le.Uint16(p[14+2*i:])
	}
	l.FstClusLO = le.Uint16(p[26:])
	for i := range l.Name3 {
		l.Name3[i] = le.Uint16(p[28+2*i:])
	}
	n := copy(l.chars[:], l.Name1[:])
	n += copy(l.chars[n:], l.Name2[:])
	copy(l.chars[n:], l.Name3[:])
	return l
}

func (l *lfnEntry) encode(p []byte) {
	le := binary.LittleEndian
	p[0] = l.Ord
	for i, c := range l.Name1 {
		le.PutUint16(p[1+2*i:], c)
	}
	p[11], p[12], p[13] = l.Attr, l.Type, l.Chksum
	for i, c := range l.Name2 {
		le.PutUint16(p[14+2*i:], c)
	}
	le.PutUint16(p[26:], l.FstClusLO)
	for i, c := range l.Name3 {
		le.PutUint16(p[28+2*i:], c)
	}
}

// setChars fills Name1..Name3 from 13 code units.
func (l *lfnEntry) setChars(c [13]uint16) {
	copy(l.Name1[:], c[0:5])
	copy(l.Name2[:], c[5:11])
	copy(l.Name3[:], c[11:13])
	l.chars = c
}

// lfnSlots splits a long name into its slots in on-disk order (the slot
// with lfnLast first), for the writer. It fails for names longer than 255
// UTF-16 code units.
func lfnSlots(name string, chk uint8) ([]lfnEntry, error) {
	u := utf16.Encode([]rune(name))
	if len(u) == 0 || len(u) > maxLFNSlots*lfnChars-5 {
		return nil, fmt.Errorf("long name of %d UTF-16 units (want 1..255)", len(u))
	}
	n := (len(u) + lfnChars - 1) / lfnChars
	slots := make([]lfnEntry, n)
	for i := range n {
		var c [13]uint16
		for j := range c {
			k := i*lfnChars + j
			switch {
			case k < len(u):
				c[j] = u[k]
			case k == len(u):
				c[j] = 0x0000
			default:
				c[j] = 0xFFFF
			}
		}
		ord := uint8(i + 1)
		if i == n-1 {
			ord |= lfnLast
		}
		s := lfnEntry{Ord: ord, Attr: attrLongName, Chksum: chk}
		s.setChars(c)
		slots[n-1-i] = s
	}
	return slots, nil
}

// codePage returns the OEM code page used for 8.3 names and labels.
func codePage(n int) (*charmap.Charmap, error) {
	switch n {
	case 0, 437:
		return charmap.CodePage437, nil
	case 850:
		return charmap.CodePage850, nil
	case 852:
		return charmap.CodePage852, nil
	case 855:
		return charmap.CodePage855, nil
	case 858:
		return charmap.CodePage858, nil
	case 860:
		return charmap.CodePage860, nil
	case 862:
		return charmap.CodePage862, nil
	case 863:
		return charmap.CodePage863, nil
	case 865:
		return charmap.CodePage865, nil
	case 866:
		return charmap.CodePage866, nil
	case 874:
		return charmap.Windows874, nil
	case 1250:
		return charmap.Windows1250, nil
	case 1251:
		return charmap.Windows1251, nil
	case 1252:
		return charmap.Windows1252, nil
	}
	return nil, fmt.Errorf("unsupported code page %d", n)
}

// decodeOEM decodes space-padded OEM bytes, dropping the trailing padding.
// A NUL or '/' (which no name may hold, and which would break a path) is
// shown as '_'.
func decodeOEM(cp *charmap.Charmap, b []byte) string {
	b = []byte(strings.TrimRight(string(b), " "))
	var sb strings.Builder
	for _, c := range b {
		if c == 0 || c == '/' {
			sb.WriteByte('_')
			continue
		}
		sb.WriteRune(cp.DecodeByte(c))
	}
	return sb.String()
}

// rawShortName is the entry's name bytes with the 0x05 escape undone.
func rawShortName(e *dirEntry) [11]byte {
	n := e.Name
	if n[0] == nameKanjiE5 {
		n[0] = nameFree
	}
	return n
}

// shortName decodes an 8.3 name: "BASE.EXT" as stored, and as shown (with
// the NT lower-case flags applied).
func shortName(cp *charmap.Charmap, e *dirEntry) (stored, shown string) {
	n := rawShortName(e)
	base, ext := decodeOEM(cp, n[0:8]), decodeOEM(cp, n[8:11])
	stored = base
	if ext != "" {
		stored += "." + ext
	}
	if e.NTRes&ntLowerBase != 0 {
		base = strings.ToLower(base)
	}
	if e.NTRes&ntLowerExt != 0 {
		ext = strings.ToLower(ext)
	}
	shown = base
	if ext != "" {
		shown += "." + ext
	}
	return stored, shown
}

// decodeLabel decodes an 11-byte volume label.
func decodeLabel(cp *charmap.Charmap, b [11]byte) string {
	if b[0] == nameKanjiE5 {
		b[0] = nameFree
	}
	return decodeOEM(cp, b[:])
}

// FAT dates and times (fatgen103 "Date and Time Formats"): date bits 15-9
// year since 1980, 8-5 month, 4-0 day; time bits 15-11 hours, 10-5
// minutes, 4-0 seconds/2. They are local time with no zone.

// decodeTime converts a FAT date, time and 10-ms count (0..199) to a time
// in loc. An invalid date or time (month 0, hour 24, ...) gives the zero
// time: the value is unset.
func decodeTime(date, tm uint16, tenths uint8, loc *time.Location) time.Time {
	if date == 0 {
		return time.Time{}
	}
	y, mo, d := int(date>>9)+1980, int(date>>5&0x0F), int(date&0x1F)
	h, mi, s := int(tm>>11), int(tm>>5&0x3F), int(tm&0x1F)*2
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || h > 23 || mi > 59 || s > 59 || tenths > 199 {
		return time.Time{}
	}
	ns := int(tenths) * 10 * int(time.Millisecond)
	s += ns / int(time.Second)
	ns %= int(time.Second)
	return time.Date(y, time.Month(mo), d, h, mi, s, ns, loc)
}

func daysIn(m, y int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// encodeTime converts t (in loc) to a FAT date, time and 10-ms count. Times
// outside 1980..2107 are clamped to the nearest representable one.
func encodeTime(t time.Time, loc *time.Location) (date, tm uint16, tenths uint8) {
	t = t.In(loc)
	switch {
	case t.Year() < 1980:
		return 1<<5 | 1, 0, 0 // 1980-01-01 00:00:00
	case t.Year() > 2107:
		return 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29, 199
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	tenths = uint8(t.Second()%2*100 + t.Nanosecond()/int(10*time.Millisecond))
	return date, tm, tenths
}

// ValidCodePage reports whether n is an OEM code page this package can
// decode short names with (0 means the default, 437).
func ValidCodePage(n int) bool {
	_, err := codePage(n)
	return err == nil
}
