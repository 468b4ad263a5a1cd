package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/mediafs/mediafs"
)

// put runs as two goroutines: a reader walks the host tree and reads the
// files' bytes ahead into a few 1 MiB slabs, and the writer (this
// goroutine) makes the directories and files in the image in the same
// order. Reading the host files and writing the image then use both
// cores, and memory stays bounded by the slabs, however large the tree.

const (
	putSlab  = 1 << 20 // bytes per slab
	putSlabs = 8       // slabs in flight
)

type putJob struct{ src, target string }

type putKind int

const (
	putDir     putKind = iota // make the directory target (if it is not one)
	putDirDone                // set the directory's time, its contents done
	putFile                   // create target with data; more follows if !last
	putChunk                  // more bytes of the current file
	putFail                   // err failed (nothing to do in the image)
	putWarn                   // a warning
)

type putItem struct {
	kind   putKind
	target string
	fi     fs.FileInfo
	data   []byte
	last   bool
	err    error
	free   []byte // a slab the writer may hand back once it gets here
	// dropped (file items) is set by the writer when the file failed in
	// the image: the reader stops reading it.
	dropped *atomic.Bool
}

// putReader walks the sources and sends the items in order.
type putReader struct {
	out       chan<- []putItem
	batch     []putItem // items not yet sent: they go in groups, to spare a wakeup per item
	slabs     chan []byte
	cur       []byte // slab being filled with small files
	used      int
	recursive bool
}

// take returns n bytes of slab space (n <= putSlab) and, when a new slab
// was started, the previous one, to be freed once the writer reaches the
// item that carries it.
func (r *putReader) take(n int) (buf, prev []byte) {
	if r.cur == nil || r.used+n > len(r.cur) {
		prev = r.cur
		select {
		case r.cur = <-r.slabs:
		default:
			r.flush() // the writer frees slabs only as it gets the items
			r.cur = <-r.slabs
		}
		r.used = 0
	}
	buf = r.cur[r.used : r.used+n : r.used+n]
	r.used += n
	return buf, prev
}

func (r *putReader) send(it putItem) {
	r.batch = append(r.batch, it)
	if len(r.batch) >= 64 {
		r.flush()
	}
}

func (r *putReader) flush() {
	if len(r.batch) > 0 {
		r.out <- r.batch
		r.batch = nil
	}
}

func (r *putReader) walk(src, target string) {
	fi, err := os.Stat(src) // FAT has no links: a link is copied as what it points to
	if err != nil {
		r.send(putItem{kind: putFail, err: err})
		return
	}
	if fi.IsDir() {
		if !r.recursive {
			r.send(putItem{kind: putFail, err: fmt.Errorf("put: omitting directory %s (use -r)", src)})
			return
		}
		r.send(putItem{kind: putDir, target: target})
		ents, err := os.ReadDir(src)
		if err != nil {
			r.send(putItem{kind: putFail, err: err})
		}
		for _, e := range ents {
			r.walk(filepath.Join(src, e.Name()), path.Join(target, e.Name()))
		}
		r.send(putItem{kind: putDirDone, target: target, fi: fi})
		return
	}
	if !fi.Mode().IsRegular() {
		r.send(putItem{kind: putWarn, err: fmt.Errorf("put: %s is not a regular file; skipped", src)})
		return
	}
	in, err := os.Open(src)
	if err != nil {
		r.send(putItem{kind: putFail, err: err})
		return
	}
	defer in.Close()
	kind := putFile
	left := fi.Size()
	dropped := new(atomic.Bool)
	for {
		if dropped.Load() {
			return // the writer gave up on this file: no more of it is read
		}
		// Small files share slabs; larger ones fill whole slabs, chunk by
		// chunk. A file that grows while read is copied as it was sized.
		n := int(min(left, putSlab))
		var buf, prev []byte
		if n > 0 {
			buf, prev = r.take(n)
		}
		k, err := io.ReadFull(in, buf)
		if err == io.ErrUnexpectedEOF {
			err = nil // it shrank: copy what there is
		}
		left -= int64(k)
		last := left <= 0 || k < n || err != nil
		it := putItem{kind: kind, target: target, fi: fi, data: buf[:k], last: last, free: prev, dropped: dropped}
		if err != nil {
			it.err = fmt.Errorf("put %s: %w", src, err) // the copy stays, short, without the source's time
		}
		r.send(it)
		if last {
			return
		}
		kind = putChunk
	}
}

// putAll copies the jobs into f and reports whether everything went.
func putAll(g *globals, f mediafs.WritableFS, jobs []putJob, recursive bool) bool {
	items := make(chan []putItem, 4)
	slabs := make(chan []byte, putSlabs)
	for range putSlabs {
		slabs <- make([]byte, putSlab)
	}
	r := &putReader{out: items, slabs: slabs, recursive: recursive}
	go func() {
		defer close(items)
		for _, j := range jobs {
			r.walk(j.src, j.target)
		}
		r.flush()
	}()
	w := &putWriter{g: g, f: f, slabs: slabs, ok: true}
	for batch := range items {
		for _, it := range batch {
			w.do(it)
		}
	}
	return w.ok
}

// putWriter makes the items in the image, in order.
type putWriter struct {
	g       *globals
	f       mediafs.WritableFS
	slabs   chan []byte
	out     mediafs.File // the file being written; nil after a failure
	lostDir string       // a directory that could not be made: what is in it is skipped
	ok      bool
}

func (w *putWriter) fail(err error) {
	w.g.errorf("%v", err)
	w.ok = false
}

func (w *putWriter) do(it putItem) {
	if it.free != nil {
		w.slabs <- it.free[:putSlab]
	}
	if w.lostDir != "" && it.target != "" && (it.target == w.lostDir || strings.HasPrefix(it.target, w.lostDir+"/")) {
		return
	}
	f := w.f
	switch it.kind {
	case putFail:
		w.fail(it.err)
	case putWarn:
		w.g.warn("%v", it.err)
	case putDir:
		if !isDir(f, it.target) {
			if err := f.Mkdir(it.target, 0o755); err != nil {
				w.fail(err)
				w.lostDir = it.target
			}
		}
	case putDirDone:
		if err := f.Chtimes(it.target, it.fi.ModTime(), it.fi.ModTime()); err != nil {
			w.fail(err)
		}
	case putFile, putChunk:
		if it.kind == putFile {
			perm := fs.FileMode(0o644)
			if it.fi.Mode().Perm()&0o200 == 0 {
				perm = 0o444 // read-only attribute
			}
			var err error
			if w.out, err = f.OpenFile(it.target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm); err != nil {
				w.fail(err)
				w.out = nil
				it.dropped.Store(true)
			}
		}
		if w.out == nil {
			return // the file failed: its remaining chunks are dropped
		}
		_, err := w.out.Write(it.data)
		if err == nil && !it.last {
			return
		}
		if err != nil {
			it.dropped.Store(true)
		}
		if cerr := w.out.Close(); err == nil {
			err = cerr
		}
		w.out = nil
		if err == nil && it.err != nil {
			w.fail(it.err) // the host file could not be read to its end
			return
		}
		if err == nil {
			err = f.Chtimes(it.target, it.fi.ModTime(), it.fi.ModTime())
		}
		if err != nil {
			w.fail(fmt.Errorf("put %s: %w", mediafs.DisplayPath(it.target), err))
		}
	}
}
