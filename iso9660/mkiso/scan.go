package mkiso

import (
	"fmt"
	"io/fs"
	"path"
	"time"
)

// node is one entry of the source tree.
type node struct {
	name     string // base name ("" for the root)
	path     string // slash path relative to the root ("" for the root)
	mode     fs.FileMode
	size     int64
	mtime    time.Time
	uid, gid uint32
	rdev     uint64
	target   string // symlink target
	ino      uint32 // serial number written in PX
	kids     []*node
	ext      []Extent // regular files: sections (Length set by plan, Block by layout)
	hole     int64    // blocks left free after each non-final section
	boot     bool
}

func (n *node) isDir() bool     { return n.mode.IsDir() }
func (n *node) isRegular() bool { return n.mode.IsRegular() }
func (n *node) isLink() bool    { return n.mode&fs.ModeSymlink != 0 }

// subdirs counts the directories among n's children.
func (n *node) subdirs() int {
	c := 0
	for _, k := range n.kids {
		if k.isDir() {
			c++
		}
	}
	return c
}

type writer struct {
	opts  Options
	bs    int64
	src   fs.FS
	root  *node
	files []*node // regular files, in path order
	vdate time.Time
	nino  uint32

	iso, jol   *tdir
	rrMoved    *tdir
	rrNames    namer   // identifiers used in rr_moved
	isoDirs    []*tdir // path-table order
	jolDirs    []*tdir
	bootNode   *node
	catBlock   int64
	ptBlock    [4]int64 // ISO L, ISO M, Joliet L, Joliet M
	ptSize     [2]int64 // ISO, Joliet
	dataBlock  int64    // first block of file data
	volBlocks  int64
	vdCount    int
	nextFreeAt int64 // block zero-length files point at
}

func (w *writer) scan() error {
	fi, err := fs.Stat(w.src, ".")
	if err != nil {
		return fmt.Errorf("mkiso: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("mkiso: source root is not a directory")
	}
	w.root = w.newNode("", "", fi)
	if err := w.scanDir(w.root); err != nil {
		return err
	}
	w.vdate = w.opts.ModTime
	if w.vdate.IsZero() {
		w.vdate = time.Unix(0, 0)
		w.walk(w.root, func(n *node) {
			if usable(n.mtime) && n.mtime.After(w.vdate) {
				w.vdate = n.mtime
			}
		})
	}
	w.vdate = clampTime(w.vdate)
	w.walk(w.root, func(n *node) {
		if !usable(n.mtime) {
			n.mtime = w.vdate
		}
		n.mtime = clampTime(n.mtime)
	})
	return nil
}

func (w *writer) newNode(name, p string, fi fs.FileInfo) *node {
	w.nino++
	n := &node{name: name, path: p, mode: fi.Mode(), mtime: fi.ModTime(), ino: w.nino}
	if n.isRegular() {
		n.size = fi.Size()
	}
	n.uid, n.gid, n.rdev = sysOwner(fi)
	return n
}

func (w *writer) scanDir(d *node) error {
	dir := d.path
	if dir == "" {
		dir = "."
	}
	ents, err := fs.ReadDir(w.src, dir)
	if err != nil {
		return fmt.Errorf("mkiso: %w", err)
	}
	rl, hasLinks := w.src.(fs.ReadLinkFS)
	for _, e := range ents {
		p := path.Join(d.path, e.Name())
		var fi fs.FileInfo
		var target string
		if e.Type()&fs.ModeSymlink != 0 {
			if !hasLinks || !w.opts.RockRidge {
				continue
			}
			if fi, err = rl.Lstat(p); err != nil {
				return fmt.Errorf("mkiso: %w", err)
			}
			if target, err = rl.ReadLink(p); err != nil {
				return fmt.Errorf("mkiso: %w", err)
			}
		} else if fi, err = e.Info(); err != nil {
			return fmt.Errorf("mkiso: %w", err)
		}
		n := w.newNode(e.Name(), p, fi)
		n.target = target
		switch {
		case n.isDir():
			if err := w.scanDir(n); err != nil {
				return err
			}
		case n.isRegular():
			w.files = append(w.files, n)
		case n.isLink():
		default:
			// Devices, FIFOs and sockets exist only in Rock Ridge.
			if !w.opts.RockRidge {
				continue
			}
		}
		d.kids = append(d.kids, n)
	}
	return nil
}

func (w *writer) walk(n *node, f func(*node)) {
	f(n)
	for _, k := range n.kids {
		w.walk(k, f)
	}
}

func usable(t time.Time) bool { return !t.IsZero() && t.Year() >= 1900 }

func clampTime(t time.Time) time.Time {
	t = t.UTC().Truncate(10 * time.Millisecond)
	if t.Year() < 1900 {
		return time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.Year() > 2155 {
		return time.Date(2155, 12, 31, 23, 59, 59, 0, time.UTC)
	}
	return t
}

// maxSection is the longest non-final section: the largest multiple of the
// block size that fits a 32-bit data length.
func (w *writer) maxSection() int64 {
	return (1<<32 - 1) / w.bs * w.bs
}

// plan decides every file's sections (lengths only) and checks options.
func (w *writer) plan() error {
	byPath := map[string]*node{}
	for _, f := range w.files {
		byPath[f.path] = f
	}
	lookup := func(what, p string) (*node, error) {
		n := byPath[cleanPath(p)]
		if n == nil {
			return nil, fmt.Errorf("mkiso: %s %q: no such regular file in the source", what, p)
		}
		return n, nil
	}
	il := map[*node][2]int{}
	for p, ug := range w.opts.Interleave {
		n, err := lookup("interleave", p)
		if err != nil {
			return err
		}
		if ug[0] < 1 || ug[0] > 255 || ug[1] < 0 || ug[1] > 255 {
			return fmt.Errorf("mkiso: interleave %q: unit %d, gap %d out of range", p, ug[0], ug[1])
		}
		if n.size > int64(1<<32-1) {
			return fmt.Errorf("mkiso: interleave %q: file too large", p)
		}
		il[n] = ug
	}
	me := map[*node]int64{}
	for p, s := range w.opts.MultiExtent {
		n, err := lookup("multi-extent", p)
		if err != nil {
			return err
		}
		if s < 1 {
			return fmt.Errorf("mkiso: multi-extent %q: section size %d", p, s)
		}
		if _, ok := il[n]; ok {
			return fmt.Errorf("mkiso: %q: both multi-extent and interleaved", p)
		}
		me[n] = min(int64(s)*w.bs, w.maxSection())
	}
	if b := w.opts.Boot; b != nil {
		n, err := lookup("boot image", b.Path)
		if err != nil {
			return err
		}
		if _, ok := il[n]; ok {
			return fmt.Errorf("mkiso: boot image %q must not be interleaved", b.Path)
		}
		n.boot = true
		w.bootNode = n
	}
	for _, f := range w.files {
		if ug, ok := il[f]; ok {
			f.ext = []Extent{{Length: f.size, Unit: ug[0], Gap: ug[1]}}
			continue
		}
		sec, ok := me[f]
		if ok {
			f.hole = 1
		} else {
			sec = w.maxSection()
		}
		rest := f.size
		for rest > sec {
			f.ext = append(f.ext, Extent{Length: sec})
			rest -= sec
		}
		f.ext = append(f.ext, Extent{Length: rest})
	}
	return nil
}
