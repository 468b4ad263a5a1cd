package mkiso

import (
	"io/fs"
	"strings"
	"time"
)

const (
	maxRecord = 254 // longest even directory record
	ceLen     = 28
	suBody    = 250 // payload of one NM or SL entry
	slChunk   = 248 // content of one SL component record
)

// The ER entry texts registered for RRIP 1.09/1.12 ("RRIP_1991A").
const (
	erID  = "RRIP_1991A"
	erDes = "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS"
	erSrc = "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION."
)

// suLayout says how a record's SUSP entries are split between the record
// and its chain of continuation areas. It depends only on entry sizes, so
// it can be computed before the layout and reused afterwards.
type suLayout struct {
	inRec     int   // entries in the record
	recBytes  int   // system-use bytes in the record (CE included)
	areas     []int // entries in each continuation area
	areaBytes []int // bytes of each area (CE included)
}

func suEntry(sig string, length int) []byte {
	b := make([]byte, length)
	b[0], b[1], b[2], b[3] = sig[0], sig[1], byte(length), 1
	return b
}

func (w *writer) entryPX(n *node) []byte {
	b := suEntry("PX", 44)
	nlink := uint32(1)
	if n.isDir() {
		nlink = uint32(2 + n.subdirs())
	}
	put733(b[4:], posixMode(n.mode))
	put733(b[12:], nlink)
	put733(b[20:], n.uid)
	put733(b[28:], n.gid)
	put733(b[36:], n.ino)
	return b
}

// posixBits maps Go mode bits to POSIX st_mode bits; the file type comes
// first (in the order that tells devices apart), then the special bits.
var posixBits = []struct {
	mode fs.FileMode
	bits uint32
	kind bool
}{
	{fs.ModeDir, 0o040000, true},
	{fs.ModeSymlink, 0o120000, true},
	{fs.ModeCharDevice, 0o020000, true},
	{fs.ModeDevice, 0o060000, true},
	{fs.ModeNamedPipe, 0o010000, true},
	{fs.ModeSocket, 0o140000, true},
	{fs.ModeSetuid, 0o4000, false},
	{fs.ModeSetgid, 0o2000, false},
	{fs.ModeSticky, 0o1000, false},
}

func posixMode(m fs.FileMode) uint32 {
	t := uint32(m.Perm())
	kind := uint32(0o100000) // regular file
	for i := len(posixBits) - 1; i >= 0; i-- {
		b := posixBits[i]
		switch {
		case m&b.mode == 0:
		case b.kind:
			kind = b.bits
		default:
			t |= b.bits
		}
	}
	return t | kind
}

func entryTF(t time.Time) []byte {
	b := suEntry("TF", 5+3*7)
	b[4] = 0x0E // modify, access, attributes
	for i := 0; i < 3; i++ {
		recDate(b[5+7*i:], t)
	}
	return b
}

func entriesNM(name string) [][]byte {
	var out [][]byte
	for {
		part := trunc(name, suBody)
		name = name[len(part):]
		b := suEntry("NM", 5+len(part))
		if name != "" {
			b[4] = 1 // continues
		}
		copy(b[5:], part)
		out = append(out, b)
		if name == "" {
			return out
		}
	}
}

// slComp is one SL component record.
type slComp struct {
	flags byte // 1 continues, 2 ".", 4 "..", 8 root
	text  string
}

func entriesSL(target string) [][]byte {
	var comps []slComp
	if strings.HasPrefix(target, "/") {
		comps = append(comps, slComp{flags: 8})
	}
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "":
		case ".":
			comps = append(comps, slComp{flags: 2})
		case "..":
			comps = append(comps, slComp{flags: 4})
		default:
			for len(part) > slChunk {
				comps = append(comps, slComp{1, part[:slChunk]})
				part = part[slChunk:]
			}
			comps = append(comps, slComp{0, part})
		}
	}
	if len(comps) == 0 {
		comps = append(comps, slComp{flags: 2})
	}
	// Pack the components into SL entries. Entry boundaries are put
	// inside a text component (which then continues in the next entry):
	// libarchive drops the "/" between a component that ends one SL entry
	// and one that starts the next.
	var bodies [][]slComp
	var cur []slComp
	used := 0
	for i := 0; i < len(comps); {
		c := comps[i]
		if used+2+len(c.text) <= suBody {
			cur = append(cur, c)
			used += 2 + len(c.text)
			i++
			continue
		}
		if free := suBody - used; c.flags&^1 == 0 && free >= 3 {
			cur = append(cur, slComp{c.flags | 1, c.text[:free-2]})
			comps[i].text = c.text[free-2:]
		} else if k := splitPoint(cur); k >= 0 {
			var moved []slComp
			if cur[k].flags&1 == 0 {
				t := cur[k].text
				moved = append(moved, slComp{0, t[len(t)-1:]})
				cur[k] = slComp{1, t[:len(t)-1]}
			}
			moved = append(moved, cur[k+1:]...)
			cur = cur[:k+1]
			comps = append(moved, comps[i:]...)
			i = 0
		}
		bodies = append(bodies, cur)
		cur, used = nil, 0
	}
	bodies = append(bodies, cur)
	out := make([][]byte, len(bodies))
	for i, body := range bodies {
		var enc []byte
		for _, c := range body {
			enc = append(append(enc, c.flags, byte(len(c.text))), c.text...)
		}
		b := suEntry("SL", 5+len(enc))
		if i < len(bodies)-1 {
			b[4] = 1
		}
		copy(b[5:], enc)
		out[i] = b
	}
	return out
}

// splitPoint finds the last component of an SL entry after which the
// entry can end without a component boundary: a continued component, or
// a text component of two bytes or more (its last byte moves on). When
// there is none, the last ".." becomes the text component "..", which
// reads the same. It returns -1 when that fails too.
func splitPoint(cur []slComp) int {
	for k := len(cur) - 1; k >= 0; k-- {
		if c := cur[k]; c.flags&1 != 0 || (c.flags == 0 && len(c.text) >= 2) {
			return k
		}
	}
	size := 0 // bytes of cur[:k]
	for _, c := range cur {
		size += 2 + len(c.text)
	}
	for k := len(cur) - 1; k >= 0; k-- {
		size -= 2 + len(cur[k].text)
		if cur[k].flags == 4 && size+3 <= suBody { // 3: the split-off ".", continued
			cur[k] = slComp{0, ".."}
			return k
		}
	}
	return -1
}

// entryPN records a device number (Linux encoding of dev_t).
func entryPN(rdev uint64) []byte {
	major := uint32((rdev>>8)&0xfff | (rdev>>32)&^0xfff)
	minor := uint32(rdev&0xff | (rdev>>12)&0xfff00)
	b := suEntry("PN", 20)
	put733(b[4:], major)
	put733(b[12:], minor)
	return b
}

func entryBlock(sig string, block int64) []byte {
	b := suEntry(sig, 12)
	put733(b[4:], uint32(block))
	return b
}

func entrySP() []byte {
	b := suEntry("SP", 7)
	b[4], b[5], b[6] = 0xBE, 0xEF, 0
	return b
}

func entryER() []byte {
	b := suEntry("ER", 8+len(erID)+len(erDes)+len(erSrc))
	b[4], b[5], b[6], b[7] = byte(len(erID)), byte(len(erDes)), byte(len(erSrc)), 1
	copy(b[8:], erID+erDes+erSrc)
	return b
}

// suEntries returns the SUSP/RRIP entries of an ISO-tree record, with
// the current layout values in CL and PL.
func (w *writer) suEntries(r *rec) [][]byte {
	var e [][]byte
	switch r.kind {
	case kDot:
		n := r.owner.n
		if r.owner == w.iso {
			e = append(e, entrySP())
		}
		e = append(e, w.entryPX(n), entryTF(n.mtime))
		if r.owner == w.iso {
			e = append(e, entryER())
		}
	case kDotDot:
		e = append(e, w.entryPX(r.d.n), entryTF(r.d.n.mtime))
		if r.owner.origParent != nil {
			e = append(e, entryBlock("PL", r.owner.origParent.block))
		}
	case kDir:
		e = append(e, w.entryPX(r.n), entryTF(r.n.mtime))
		e = append(e, entriesNM(r.n.name)...)
		if r.re {
			e = append(e, suEntry("RE", 4))
		}
	case kPlaceholder:
		e = append(e, w.entryPX(r.n), entryTF(r.n.mtime))
		e = append(e, entriesNM(r.n.name)...)
		e = append(e, entryBlock("CL", r.d.block))
	case kFile:
		n := r.n
		e = append(e, w.entryPX(n), entryTF(n.mtime))
		e = append(e, entriesNM(n.name)...)
		if n.isLink() {
			e = append(e, entriesSL(n.target)...)
		}
		if n.mode&fs.ModeDevice != 0 {
			e = append(e, entryPN(n.rdev))
		}
	}
	return e
}

// splitSU decides which entries stay in a record with avail bytes of
// system-use space and how the rest is spread over continuation areas of
// at most bs bytes each.
func splitSU(ents [][]byte, avail, bs int) suLayout {
	n := len(ents)
	suffix := make([]int, n+1)
	for i := n - 1; i >= 0; i-- {
		suffix[i] = suffix[i+1] + len(ents[i])
	}
	if suffix[0] <= avail {
		return suLayout{inRec: n, recBytes: suffix[0]}
	}
	var l suLayout
	i := 0
	for i < n && l.recBytes+len(ents[i])+ceLen <= avail {
		l.recBytes += len(ents[i])
		i++
	}
	l.inRec, l.recBytes = i, l.recBytes+ceLen
	for i < n {
		a, j := 0, i
		for j < n {
			if a+suffix[j] <= bs {
				a, j = a+suffix[j], n
				break
			}
			if a+len(ents[j])+ceLen > bs {
				break
			}
			a += len(ents[j])
			j++
		}
		if j < n {
			a += ceLen
		}
		l.areas = append(l.areas, j-i)
		l.areaBytes = append(l.areaBytes, a)
		i = j
	}
	return l
}

// entryCE points at a continuation area at byte offset off.
func (w *writer) entryCE(off int64, length int) []byte {
	b := suEntry("CE", ceLen)
	put733(b[4:], uint32(off/w.bs))
	put733(b[12:], uint32(off%w.bs))
	put733(b[20:], uint32(length))
	return b
}

// suBytes renders r's system-use area and writes its continuation areas
// into meta.
func (w *writer) suBytes(r *rec, meta []byte) []byte {
	ents := w.suEntries(r)
	l := r.su
	var out []byte
	for _, e := range ents[:l.inRec] {
		out = append(out, e...)
	}
	i := l.inRec
	for k, cnt := range l.areas {
		ce := w.entryCE(r.ceOff[k], l.areaBytes[k])
		if k == 0 {
			out = append(out, ce...)
		} else {
			// The CE that leads here ends the previous area.
			prev := r.ceOff[k-1] + int64(l.areaBytes[k-1]) - ceLen
			copy(meta[prev:], ce)
		}
		pos := r.ceOff[k]
		for _, e := range ents[i : i+cnt] {
			pos += int64(copy(meta[pos:], e))
		}
		i += cnt
	}
	return out
}
