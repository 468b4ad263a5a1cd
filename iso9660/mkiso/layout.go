package mkiso

import (
	"encoding/binary"
	"fmt"
	"time"
)

func put723(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

func put733(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

// recDate writes a 7-byte directory-record date (UTC).
func recDate(b []byte, t time.Time) {
	b[0] = byte(t.Year() - 1900)
	b[1], b[2] = byte(t.Month()), byte(t.Day())
	b[3], b[4], b[5] = byte(t.Hour()), byte(t.Minute()), byte(t.Second())
	b[6] = 0
}

// vdDate writes a 17-byte volume-descriptor date; the zero time is "not
// specified".
func vdDate(b []byte, t time.Time) {
	if t.IsZero() {
		copy(b, "0000000000000000")
		b[16] = 0
		return
	}
	copy(b, fmt.Sprintf("%04d%02d%02d%02d%02d%02d%02d", t.Year(), t.Month(), t.Day(),
		t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7))
	b[16] = 0
}

func roundUp(v, m int64) int64 { return (v + m - 1) / m * m }
func ceilDiv(v, m int64) int64 { return (v + m - 1) / m }

// pad is the padding byte after an identifier of even length.
func idPad(id []byte) int { return 1 - len(id)%2 }

func pathTableSize(dirs []*tdir) int64 {
	var s int64
	for _, d := range dirs {
		s += int64(8 + len(d.id) + len(d.id)%2)
	}
	return s
}

// sizeRecords fixes every record's length (and its SUSP split).
func (w *writer) sizeRecords(dirs []*tdir, susp bool) {
	for _, d := range dirs {
		for _, r := range d.recs {
			base := 33 + len(r.id) + idPad(r.id)
			su := 0
			if susp {
				r.su = splitSU(w.suEntries(r), maxRecord-base, int(w.bs))
				su = r.su.recBytes
			}
			r.size = base + su + su%2
		}
	}
}

// eachRecord calls f with the byte offset of every record of d: records
// never cross a 2048-byte sector.
func eachRecord(d *tdir, f func(r *rec, off int64)) int64 {
	pos := d.start
	for _, r := range d.recs {
		if pos%sectorSize+int64(r.size) > sectorSize {
			pos = roundUp(pos, sectorSize)
		}
		f(r, pos)
		pos += int64(r.size)
	}
	return pos
}

func (w *writer) layout() {
	bs := w.bs
	spb := sectorSize / bs
	w.vdCount = 2
	if w.opts.Boot != nil {
		w.vdCount++
	}
	if w.opts.Joliet {
		w.vdCount++
	}
	cur := int64(16+w.vdCount) * spb

	w.ptSize[0] = pathTableSize(w.isoDirs)
	w.ptSize[1] = pathTableSize(w.jolDirs)
	for i := range w.ptBlock {
		if i >= 2 && !w.opts.Joliet {
			break
		}
		w.ptBlock[i] = cur
		cur += ceilDiv(w.ptSize[i/2], bs)
	}

	w.sizeRecords(w.isoDirs, w.opts.RockRidge)
	w.sizeRecords(w.jolDirs, false)
	// Each directory is followed by the continuation areas of its records
	// (libarchive reads a CE area only right after the directory that
	// refers to it).
	pos := cur * bs
	for _, d := range append(append([]*tdir{}, w.isoDirs...), w.jolDirs...) {
		if !w.opts.UnalignedDirs {
			pos = roundUp(pos, sectorSize)
		}
		d.start, d.block = pos, pos/bs
		end := eachRecord(d, func(*rec, int64) {})
		d.size = roundUp(end-d.start, bs)
		pos = d.start + d.size
		for _, r := range d.recs {
			r.ceOff = r.ceOff[:0]
			for _, a := range r.su.areaBytes {
				if pos%bs+int64(a) > bs {
					pos = roundUp(pos, bs)
				}
				r.ceOff = append(r.ceOff, pos)
				pos += int64(a)
			}
		}
		pos = roundUp(pos, bs)
	}
	cur = pos / bs

	if w.opts.Boot != nil {
		cur = roundUp(cur, spb)
		w.catBlock = cur
		cur += spb
	}
	w.dataBlock = cur
	if w.bootNode != nil {
		cur = roundUp(cur, spb)
		cur = w.place(w.bootNode, cur)
	}
	for _, f := range w.files {
		if !f.boot {
			cur = w.place(f, cur)
		}
	}
	w.volBlocks = cur
}

// place allocates f's data from block cur on and returns the next free block.
func (w *writer) place(f *node, cur int64) int64 {
	e := f.ext
	if f.size == 0 {
		e[0].Block = cur
		if w.opts.EmptyAtZero {
			e[0].Block = 0
		}
		return cur
	}
	if e[0].Unit > 0 {
		nb := ceilDiv(f.size, w.bs)
		units := ceilDiv(nb, int64(e[0].Unit))
		e[0].Block = cur
		return cur + nb + (units-1)*int64(e[0].Gap)
	}
	for i := range e {
		e[i].Block = cur
		cur += ceilDiv(e[i].Length, w.bs)
		if i < len(e)-1 {
			cur += f.hole
		}
	}
	return cur
}

// dirRecord renders r; with susp its system-use area is added and its
// continuation areas are written into meta.
func (w *writer) dirRecord(r *rec, meta []byte, susp bool) []byte {
	b := make([]byte, r.size)
	var block, length int64
	var flags, unit, gap byte
	var t time.Time
	switch r.kind {
	case kDot, kDotDot, kDir:
		block, length, flags, t = r.d.block, r.d.size, 2, r.d.n.mtime
	case kPlaceholder:
		block, t = r.d.block, r.n.mtime
	case kFile:
		t = r.n.mtime
		if ext := r.n.ext; len(ext) > 0 {
			e := ext[r.sec]
			block, length = e.Block, e.Length
			unit, gap = byte(e.Unit), byte(e.Gap)
			if r.sec < len(ext)-1 {
				flags = 0x80
			}
		}
	}
	b[0] = byte(r.size)
	put733(b[2:], uint32(block))
	put733(b[10:], uint32(length))
	recDate(b[18:], t)
	b[25], b[26], b[27] = flags, unit, gap
	put723(b[28:], 1)
	b[32] = byte(len(r.id))
	copy(b[33:], r.id)
	if susp {
		copy(b[33+len(r.id)+idPad(r.id):], w.suBytes(r, meta))
	}
	return b
}

func (w *writer) serialize() []byte {
	meta := make([]byte, w.dataBlock*w.bs)
	vd := 16
	next := func() []byte {
		b := meta[vd*sectorSize : (vd+1)*sectorSize]
		vd++
		return b
	}
	w.volumeDescriptor(next(), false)
	if w.opts.Boot != nil {
		w.bootRecord(next())
	}
	if w.opts.Joliet {
		w.volumeDescriptor(next(), true)
	}
	term := next()
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1

	trees := [][]*tdir{w.isoDirs, w.jolDirs}
	for t, dirs := range trees {
		for _, d := range dirs {
			eachRecord(d, func(r *rec, off int64) {
				copy(meta[off:], w.dirRecord(r, meta, t == 0 && w.opts.RockRidge))
			})
		}
		if len(dirs) > 0 {
			w.pathTable(meta[w.ptBlock[2*t]*w.bs:], dirs, binary.LittleEndian)
			w.pathTable(meta[w.ptBlock[2*t+1]*w.bs:], dirs, binary.BigEndian)
		}
	}
	if w.opts.Boot != nil {
		w.bootCatalog(meta[w.catBlock*w.bs:])
	}
	return meta
}

func (w *writer) pathTable(b []byte, dirs []*tdir, order binary.ByteOrder) {
	pos := 0
	for _, d := range dirs {
		b[pos] = byte(len(d.id))
		order.PutUint32(b[pos+2:], uint32(d.block))
		order.PutUint16(b[pos+6:], uint16(d.parent.num))
		copy(b[pos+8:], d.id)
		pos += 8 + len(d.id) + len(d.id)%2
	}
}

// text fills a volume-descriptor text field: a-/d-characters padded with
// spaces, or UCS-2BE padded with UCS-2 spaces in a Joliet SVD.
func text(b []byte, s string, joliet bool) {
	if !joliet {
		for i := range b {
			b[i] = ' '
		}
		copy(b, s)
		return
	}
	for i := 0; i+1 < len(b); i += 2 {
		b[i], b[i+1] = 0, ' '
	}
	u := ucs2(s)
	copy(b, u[:min(len(u), len(b)&^1)])
}

func (w *writer) volumeDescriptor(b []byte, joliet bool) {
	dirs, pt := w.isoDirs, 0
	label := trunc(dchars(w.opts.VolumeID), 32)
	b[0] = 1
	if joliet {
		dirs, pt = w.jolDirs, 2
		label = w.opts.VolumeID
		if r := []rune(label); len(r) > 16 {
			label = string(r[:16])
		}
		b[0] = 2
		copy(b[88:], "%/E")
	}
	copy(b[1:], "CD001")
	b[6] = 1
	text(b[8:40], "", joliet)
	text(b[40:72], label, joliet)
	put733(b[80:], uint32(w.volBlocks))
	put723(b[120:], 1)
	put723(b[124:], 1)
	put723(b[128:], uint16(w.bs))
	put733(b[132:], uint32(w.ptSize[pt/2]))
	binary.LittleEndian.PutUint32(b[140:], uint32(w.ptBlock[pt]))
	binary.BigEndian.PutUint32(b[148:], uint32(w.ptBlock[pt+1]))
	root := &rec{kind: kDot, id: []byte{0}, d: dirs[0], owner: dirs[0], size: 34}
	copy(b[156:190], w.dirRecord(root, nil, false))
	text(b[190:318], label, joliet)
	text(b[318:446], "", joliet)
	text(b[446:574], "", joliet)
	text(b[574:702], "MEDIAFS MKISO", joliet)
	text(b[702:739], "", joliet)
	text(b[739:776], "", joliet)
	text(b[776:813], "", joliet)
	vdDate(b[813:], w.vdate)
	vdDate(b[830:], w.vdate)
	vdDate(b[847:], time.Time{})
	vdDate(b[864:], time.Time{})
	b[881] = 1
}

func (w *writer) bootRecord(b []byte) {
	b[0] = 0
	copy(b[1:], "CD001")
	b[6] = 1
	copy(b[7:], "EL TORITO SPECIFICATION")
	binary.LittleEndian.PutUint32(b[0x47:], uint32(w.catBlock*w.bs/sectorSize))
}

func (w *writer) bootCatalog(c []byte) {
	bt := w.opts.Boot
	c[0], c[1] = 1, bt.Platform
	c[0x1E], c[0x1F] = 0x55, 0xAA
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(c[i:])
	}
	binary.LittleEndian.PutUint16(c[0x1C:], -sum)
	e := c[32:64]
	e[0], e[1] = 0x88, bt.Emulation
	load := bt.LoadSize
	if load == 0 {
		load = 4
	}
	binary.LittleEndian.PutUint16(e[6:], load)
	binary.LittleEndian.PutUint32(e[8:], uint32(w.bootNode.ext[0].Block*w.bs/sectorSize))
}
