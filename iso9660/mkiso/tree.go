package mkiso

import (
	"bytes"
	"io/fs"
	"sort"
)

// maxLevel is the deepest directory level ECMA-119 allows (root = 1).
const maxLevel = 8

// tdir is a directory of one tree (ISO 9660 or Joliet).
type tdir struct {
	n          *node
	parent     *tdir // parent in this tree (the root is its own parent)
	origParent *tdir // relocated directories: the parent they were moved from
	id         []byte
	level      int
	num        int // path table number
	recs       []*rec
	block      int64 // extent, logical blocks
	size       int64 // data length, bytes
	start      int64 // byte offset of the extent
}

type recKind uint8

const (
	kDot recKind = iota
	kDotDot
	kFile // regular file section, symlink or special file
	kDir
	kPlaceholder // Rock Ridge CL: stands for a relocated directory
)

// rec is one directory record.
type rec struct {
	kind  recKind
	id    []byte
	n     *node // the entry's source node (kFile, kDir, kPlaceholder)
	d     *tdir // directory the record points to (kDot, kDotDot, kDir, kPlaceholder)
	owner *tdir // directory that holds the record
	sec   int   // kFile: section index
	re    bool  // Rock Ridge RE: a relocated directory inside rr_moved
	su    suLayout
	ceOff []int64 // byte offsets of the continuation areas
	size  int     // record length
}

func (w *writer) buildTrees() {
	w.iso = &tdir{n: w.root, level: 1, id: []byte{0}}
	w.iso.parent = w.iso
	if depth(w.root, 1) > maxLevel {
		w.nino++
		rn := &node{name: "rr_moved", mode: fs.ModeDir | 0o555, mtime: w.vdate, ino: w.nino}
		w.rrMoved = &tdir{n: rn, parent: w.iso, level: 2}
		w.rrNames = namer{}
	}
	w.fillISO(w.iso, namer{})
	if w.rrMoved != nil {
		w.finishDir(w.rrMoved, isoLess)
	}
	w.isoDirs = pathOrder(w.iso)
	if w.opts.Joliet {
		w.jol = &tdir{n: w.root, level: 1, id: []byte{0}}
		w.jol.parent = w.jol
		w.fillJoliet(w.jol)
		w.jolDirs = pathOrder(w.jol)
	}
}

func depth(n *node, level int) int {
	d := level
	for _, k := range n.kids {
		if k.isDir() {
			d = max(d, depth(k, level+1))
		}
	}
	return d
}

// fileRecs appends the records of a non-directory entry.
func fileRecs(d *tdir, n *node, id []byte) {
	secs := max(len(n.ext), 1)
	for i := 0; i < secs; i++ {
		d.recs = append(d.recs, &rec{kind: kFile, id: id, n: n, owner: d, sec: i})
	}
}

// fillISO builds the ISO 9660 records of d; names already holds the
// identifiers reserved in d.
func (w *writer) fillISO(d *tdir, names namer) {
	if d == w.iso && w.rrMoved != nil {
		w.rrMoved.id = names.iso("RR_MOVED", true)
		d.recs = append(d.recs, &rec{kind: kDir, id: w.rrMoved.id, n: w.rrMoved.n, d: w.rrMoved, owner: d})
	}
	for _, k := range d.n.kids {
		if !k.isDir() {
			if k.isRegular() || w.opts.RockRidge {
				fileRecs(d, k, names.iso(k.name, false))
			}
			continue
		}
		id := names.iso(k.name, true)
		if d.level+1 <= maxLevel {
			sub := &tdir{n: k, parent: d, id: id, level: d.level + 1}
			d.recs = append(d.recs, &rec{kind: kDir, id: id, n: k, d: sub, owner: d})
			w.fillISO(sub, namer{})
			continue
		}
		// Too deep: move k into rr_moved and leave a placeholder.
		mv := w.rrMoved
		sub := &tdir{n: k, parent: mv, origParent: d, level: mv.level + 1}
		sub.id = w.rrNames.iso(k.name, true)
		d.recs = append(d.recs, &rec{kind: kPlaceholder, id: id, n: k, d: sub, owner: d})
		mv.recs = append(mv.recs, &rec{kind: kDir, id: sub.id, n: k, d: sub, owner: mv, re: true})
		mv.n.kids = append(mv.n.kids, k)
		w.fillISO(sub, namer{})
	}
	w.finishDir(d, isoLess)
}

func (w *writer) fillJoliet(d *tdir) {
	names := namer{}
	for _, k := range d.n.kids {
		switch {
		case k.isDir():
			sub := &tdir{n: k, parent: d, id: names.joliet(k.name, true), level: d.level + 1}
			d.recs = append(d.recs, &rec{kind: kDir, id: sub.id, n: k, d: sub, owner: d})
			w.fillJoliet(sub)
		case k.isRegular():
			fileRecs(d, k, names.joliet(k.name, false))
		}
	}
	w.finishDir(d, func(a, b []byte) bool { return bytes.Compare(a, b) < 0 })
}

// finishDir sorts d's records and puts "." and ".." in front.
func (w *writer) finishDir(d *tdir, less func(a, b []byte) bool) {
	sort.SliceStable(d.recs, func(i, j int) bool { return less(d.recs[i].id, d.recs[j].id) })
	dots := []*rec{
		{kind: kDot, id: []byte{0}, d: d, owner: d},
		{kind: kDotDot, id: []byte{1}, d: d.parent, owner: d},
	}
	d.recs = append(dots, d.recs...)
}

// pathOrder lists the directories of a tree in path-table order (level,
// then parent number, then identifier) and numbers them.
func pathOrder(root *tdir) []*tdir {
	out := []*tdir{root}
	for i := 0; i < len(out); i++ {
		out[i].num = i + 1
		for _, r := range out[i].recs {
			if r.kind == kDir {
				out = append(out, r.d)
			}
		}
	}
	return out
}
