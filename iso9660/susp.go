package iso9660

import (
	"fmt"
	"strings"
	"time"
)

// SUSP 1.12 4.1 System Use Entry: signature (2), length (1), version (1),
// data (length-4).
type suspEntry struct {
	Sig  string
	Ver  byte
	Data []byte
}

// decodeSUSPEntry decodes the entry at the start of b and returns its length.
// ok is false when b holds no further entry: fewer than 4 bytes, padding
// (a NUL signature), or a length that is below 4 or runs past b; bad is set
// for the last case.
func decodeSUSPEntry(b []byte) (e suspEntry, n int, ok, bad bool) {
	if len(b) < 4 || b[0] == 0 {
		return e, 0, false, false
	}
	n = int(b[2])
	if n < 4 || n > len(b) {
		return e, 0, false, true
	}
	return suspEntry{Sig: string(b[:2]), Ver: b[3], Data: b[4:n]}, n, true, false
}

// SUSP 1.12 5.1 Continuation Area (CE): location (logical block), offset and
// length in bytes of the next piece of the system use area.
type ceEntry struct {
	Block, Offset, Length uint32
}

func decodeCE(d []byte) (ceEntry, bool) {
	if len(d) < 24 {
		return ceEntry{}, false
	}
	return ceEntry{Block: le32(d[0:]), Offset: le32(d[8:]), Length: le32(d[16:])}, true
}

// SUSP 1.12 5.3 SP (system use sharing protocol) indicator: check bytes
// BE EF and LEN_SKP, the bytes to skip at the start of every other system
// use area.
func decodeSP(d []byte) (lenSkp int, ok bool) {
	if len(d) < 3 || d[0] != 0xBE || d[1] != 0xEF {
		return 0, false
	}
	return int(d[2]), true
}

// xaPrefixLen is the size of the CD-ROM XA system use information that may
// precede the SUSP entries (signature "XA" at byte 6).
const xaPrefixLen = 14

// stripXA drops a CD-ROM XA system use prefix.
func stripXA(su []byte) []byte {
	if len(su) >= xaPrefixLen && su[6] == 'X' && su[7] == 'A' {
		return su[xaPrefixLen:]
	}
	return su
}

// RRIP 1.12 4.1.1 PX POSIX file attributes: mode, links, uid, gid (733
// each) and, in RRIP 1.12, a serial number.
type pxEntry struct {
	Mode, Nlink, UID, GID uint32
	Ino                   uint64
	HasIno                bool
}

func decodePX(d []byte) (pxEntry, bool) {
	if len(d) < 32 {
		return pxEntry{}, false
	}
	p := pxEntry{Mode: le32(d[0:]), Nlink: le32(d[8:]), UID: le32(d[16:]), GID: le32(d[24:])}
	if len(d) >= 40 {
		p.Ino, p.HasIno = uint64(le32(d[32:])), true
	}
	return p, true
}

// RRIP 1.12 4.1.2 PN POSIX device number: high and low 32 bits.
func decodePN(d []byte) (high, low uint32, ok bool) {
	if len(d) < 16 {
		return 0, 0, false
	}
	return le32(d[0:]), le32(d[8:]), true
}

// RRIP 1.12 4.1.6 TF time stamps: flags, then the recorded times in the
// order creation, modify, access, attributes, backup, expiration,
// effective; 7-byte (9.1.5) or, with flag 0x80, 17-byte (8.4.26.1) form.
type tfEntry struct {
	Create, Modify, Access, Attributes time.Time
}

func decodeTF(d []byte) (tfEntry, bool) {
	var t tfEntry
	if len(d) < 1 {
		return t, false
	}
	flags := d[0]
	size := 7
	if flags&0x80 != 0 {
		size = 17
	}
	p := d[1:]
	dst := []*time.Time{&t.Create, &t.Modify, &t.Access, &t.Attributes, nil, nil, nil}
	for bit := 0; bit < 7; bit++ {
		if flags&(1<<bit) == 0 {
			continue
		}
		if len(p) < size {
			return t, false
		}
		if dst[bit] != nil {
			if size == 7 {
				*dst[bit] = decodeRecordDate(p[:7])
			} else {
				*dst[bit] = decodeLongDate(p[:17])
			}
		}
		p = p[size:]
	}
	return t, true
}

// zisofs ZF entry (not part of RRIP; defined by zisofs-tools): algorithm
// "pz", header size in 4-byte units, log2 of the block size, uncompressed
// size (733).
type zfEntry struct {
	HeaderSize int // bytes
	Log2Block  int
	Size       int64 // uncompressed
}

func decodeZF(d []byte) (zfEntry, bool) {
	if len(d) < 12 || d[0] != 'p' || d[1] != 'z' {
		return zfEntry{}, false
	}
	z := zfEntry{HeaderSize: int(d[2]) * 4, Log2Block: int(d[3]), Size: int64(le32(d[4:]))}
	// libarchive requires block sizes 2^15..2^17; others are ignored and the
	// raw bytes shown (corpus-notes 16).
	if z.Log2Block < 15 || z.Log2Block > 17 || z.HeaderSize < 16 {
		return zfEntry{}, false
	}
	return z, true
}

// rrState gathers the Rock Ridge information of one directory record across
// its system use area and continuation areas.
type rrState struct {
	any bool // any RRIP entry seen

	sp     bool
	lenSkp int

	px    pxEntry
	hasPX bool

	pnHigh, pnLow uint32
	hasPN         bool

	name     strings.Builder
	hasName  bool
	nameDone bool // an NM without the CONTINUE flag was seen

	link     strings.Builder
	isLink   bool
	linkSep  string
	linkDone bool

	tf    tfEntry
	hasTF bool

	cl, pl       int64 // child / parent link blocks, -1 when absent
	relocatedDir bool  // RE: this record is the real place of a relocated dir

	zf    zfEntry
	hasZF bool

	problem string // first malformed entry, for a warning
	fatal   error  // a continuation-area loop or overrun: reported as an error
}

func newRRState() *rrState { return &rrState{cl: -1, pl: -1} }

func (st *rrState) note(format string, a ...any) {
	if st.problem == "" {
		st.problem = fmt.Sprintf(format, a...)
	}
}

// maxNameBytes bounds an NM name and an SL target built from many entries.
const maxNameBytes = 4096

// parseArea decodes the entries of one system use or continuation area. It
// returns the area's CE entry, if any, and whether an ST entry ended the
// system use field.
func (st *rrState) parseArea(b []byte) (ce ceEntry, hasCE, stop bool) {
	for {
		e, n, ok, bad := decodeSUSPEntry(b)
		if bad {
			st.note("system use entry %q with length %d does not fit in the %d bytes left", b[:2], b[2], len(b))
		}
		if !ok {
			return
		}
		b = b[n:]
		switch e.Sig {
		case "ST": // SUSP 5.4
			return ce, hasCE, true
		case "CE":
			if c, ok := decodeCE(e.Data); ok {
				ce, hasCE = c, true
			} else {
				st.note("short CE entry")
			}
		case "SP":
			if skip, ok := decodeSP(e.Data); ok {
				st.sp, st.lenSkp = true, skip
			}
		case "PD", "ER", "ES": // SUSP 5.2, 5.5, 5.6: nothing the reader needs
		case "RR": // RRIP 1.09 flags
			st.any = true
		case "PX":
			if p, ok := decodePX(e.Data); ok {
				st.px, st.hasPX, st.any = p, true, true
			} else {
				st.note("short PX entry")
			}
		case "PN":
			if h, l, ok := decodePN(e.Data); ok {
				st.pnHigh, st.pnLow, st.hasPN, st.any = h, l, true, true
			}
		case "SL":
			st.any = true
			st.decodeSL(e.Data)
		case "NM":
			st.any = true
			st.decodeNM(e.Data)
		case "TF":
			if t, ok := decodeTF(e.Data); ok {
				st.tf, st.hasTF, st.any = t, true, true
			} else {
				st.note("short TF entry")
			}
		case "CL":
			if len(e.Data) >= 8 {
				st.cl, st.any = int64(le32(e.Data)), true
			}
		case "PL":
			if len(e.Data) >= 8 {
				st.pl, st.any = int64(le32(e.Data)), true
			}
		case "RE":
			st.relocatedDir, st.any = true, true
		case "ZF":
			if z, ok := decodeZF(e.Data); ok {
				st.zf, st.hasZF = z, true
			}
		}
	}
}

// RRIP 1.12 4.1.4 NM alternate name: flags (1 CONTINUE, 2 CURRENT, 4
// PARENT), then name bytes. Several NM entries are concatenated.
func (st *rrState) decodeNM(d []byte) {
	if len(d) < 1 || st.nameDone {
		return
	}
	flags := d[0]
	if flags&(0x02|0x04) != 0 {
		return // names "." and "..": not used for entries we show
	}
	if st.name.Len()+len(d)-1 <= maxNameBytes {
		st.name.Write(d[1:])
	}
	st.hasName = true
	if flags&0x01 == 0 {
		st.nameDone = true
	}
}

// RRIP 1.12 4.1.3 SL symbolic link: flags (1 CONTINUE: the next SL entry
// continues this link), then component records: flags (1 CONTINUE, 2
// CURRENT, 4 PARENT, 8 ROOT), length, content. Components are joined
// literally as libarchive does (corpus-notes 7): a "/" goes between
// components, none after a ROOT component or a continued component, and
// empty components are kept.
func (st *rrState) decodeSL(d []byte) {
	if len(d) < 1 || st.linkDone {
		return
	}
	st.isLink = true
	more := d[0]&0x01 != 0
	d = d[1:]
	for len(d) >= 2 {
		flags, n := d[0], int(d[1])
		if 2+n > len(d) {
			st.note("SL component of %d bytes runs past its entry", n)
			break
		}
		content := d[2 : 2+n]
		d = d[2+n:]
		if st.link.Len() > maxNameBytes {
			continue
		}
		st.link.WriteString(st.linkSep)
		st.linkSep = "/"
		switch {
		case flags&0x02 != 0:
			st.link.WriteString(".")
		case flags&0x04 != 0:
			st.link.WriteString("..")
		case flags&0x08 != 0:
			st.link.WriteString("/")
			st.linkSep = ""
		default:
			st.link.Write(content)
			if flags&0x01 != 0 {
				st.linkSep = ""
			}
		}
	}
	if !more {
		st.linkDone = true
	}
}

// devNumber decodes an RRIP PN entry into major and minor numbers
// (corpus-notes 11): major is the high word and minor the low one; when the
// high word is 0 the low word is an old 16-bit dev_t (major<<8 | minor), as
// Linux isofs reads it.
func devNumber(high, low uint32) (major, minor uint32) {
	if high == 0 {
		return low >> 8, low & 0xFF
	}
	return high, low
}
