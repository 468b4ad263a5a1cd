package fuse

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Directory read-ahead for small files.
//
// Reading a tree (cp -a, tar, rsync, grep -r) goes through each directory's
// files in listing order, and for small files every read is a round trip
// to this process that the reader waits for. When a read-only mount of an
// image file serves the first read of a small file, it pushes the next
// small files of the same listing into the kernel's page cache
// (FUSE_NOTIFY_STORE), so that the reader finds them there: the first
// prefetchHead of them before it answers that read (the reader cannot get
// to them before it has the answer), the rest from a background goroutine,
// which by then has a head start. While a tree is being read (a file was
// read in the last treeReadIdle), a directory's window starts as soon as
// its listing is complete, so that its first file does not wait either:
// the kernel asks for more entries after the last one, and the head of the
// window is pushed before that answer. It is read-ahead across files: it
// starts only when files are actually read (ls -l, find and du read none,
// so they cost nothing), it is bounded (prefetchFiles files, prefetchBytes
// bytes per window, files of at most prefetchMax bytes), and the next
// window starts when the reader reaches a file that is not cached yet.
// Media that are not plain image files (block devices, ddrescue maps,
// retries, timeouts) are never read speculatively: a bad sector is
// reported to the read that asked for it.
//
// Measured on the bench tree (bench.py --fs mount): of the 20,000 small
// files, a cold cp -a waited for 650 to 1,100 of them without the head
// and the listing-time window (one per directory, and the ones the worker
// had not pushed yet) and for 120 to 330 with them.

const (
	prefetchMax   = 128 << 10 // largest file pushed
	prefetchFiles = 64        // files per window
	prefetchBytes = 4 << 20   // bytes per window
	prefetchHead  = 2         // files pushed before the reply that starts a window

	// treeReadIdle is how long after the last READ of a file a listing
	// still counts as part of a tree being read.
	treeReadIdle = time.Second
)

// listing is a directory's entries in the order READDIRPLUS gave them.
type listing struct {
	kids []*node
}

// prefetcher pushes small files into the kernel's cache.
type prefetcher struct {
	m    *mount
	jobs chan *node
	once sync.Once
	quit chan struct{}
	done sync.WaitGroup

	bufs     sync.Pool    // of *[]byte, prefetchMax long, for pushes made by requests
	lastRead atomic.Int64 // time of the last READ of a file (UnixNano)
	lastList atomic.Int64 // time of the last end of a listing (UnixNano)
	streams  chan *node   // large files to read ahead (stream.go)

	pushed   atomic.Int64 // files pushed (for tests)
	streamed atomic.Int64 // bytes of large files pushed (for tests)
}

func newPrefetcher(m *mount) *prefetcher {
	p := &prefetcher{m: m, jobs: make(chan *node, 2*prefetchFiles), streams: make(chan *node, 4), quit: make(chan struct{})}
	p.bufs.New = func() any { b := make([]byte, prefetchMax); return &b }
	return p
}

func (p *prefetcher) start() {
	p.once.Do(func() {
		p.done.Add(2)
		go p.run()
		go p.runStreams()
	})
}

// halt tells the workers to stop (mount.stop waits for them).
func (p *prefetcher) halt() {
	p.once.Do(func() {}) // no worker after this
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
}

func (p *prefetcher) run() {
	buf := make([]byte, prefetchMax)
	p.serve(p.jobs, func(n *node) { p.push(n, buf) })
}

// serve runs a worker: do for each node sent on jobs, until stop.
func (p *prefetcher) serve(jobs <-chan *node, do func(*node)) {
	defer p.done.Done()
	for {
		select {
		case <-p.quit:
			return
		case n := <-jobs:
			do(n)
		}
	}
}

// push reads n (a small regular file) and stores it in the kernel's cache.
func (p *prefetcher) push(n *node, buf []byte) {
	size := n.size()
	if size <= 0 || size > prefetchMax {
		return
	}
	if p.pushRange(n, 0, buf[:size]) {
		p.pushed.Add(1)
	}
}

// pushRange reads len(buf) bytes of n at off and stores them in the
// kernel's cache; false if it could not (the READ that wants them will say
// why), or if the kernel forgot the inode meanwhile.
func (p *prefetcher) pushRange(n *node, off int64, buf []byte) bool {
	m := p.m
	if !m.enter() {
		return false
	}
	defer m.leave()
	if n.id.removed.Load() {
		return false
	}
	if _, parent := n.Parent(); parent == nil {
		return false // forgotten by the kernel meanwhile
	}
	h, errno := n.sharedHandleEntered()
	if errno != 0 {
		return false
	}
	if k, _ := h.ra.ReadAt(buf, off); k != len(buf) {
		return false
	}
	select {
	case <-p.quit:
		return false // the mount is closing
	default:
	}
	return n.WriteCache(off, buf) == 0
}

// size is the file size the node last reported.
func (n *node) size() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return int64(n.attr.Size)
}

// afterRead starts the read-ahead after the first read of file n: the small
// files that follow it in its directory's listing, up to a window.
func (p *prefetcher) afterRead(n *node) {
	p.lastRead.Store(time.Now().UnixNano())
	if !n.cached.CompareAndSwap(false, true) {
		return
	}
	_, parent := n.Parent()
	if parent == nil {
		return
	}
	dir, ok := parent.Operations().(*node)
	if !ok {
		return
	}
	dir.mu.Lock()
	l := dir.listing
	dir.mu.Unlock()
	if l == nil {
		return
	}
	i := 0
	for i < len(l.kids) && l.kids[i] != n {
		i++
	}
	p.window(l, i+1, n)
}

// listed starts the read-ahead of a directory's first small files when its
// listing is complete (the kernel has made its entries' inodes) while a
// tree is being read, so that its first file does not wait either.
func (p *prefetcher) listed(l *listing) {
	p.lastList.Store(time.Now().UnixNano())
	if time.Since(time.Unix(0, p.lastRead.Load())) > treeReadIdle {
		return
	}
	p.window(l, 0, nil)
}

// window reads ahead the small files of l from index i on: the first
// prefetchHead of them before returning (the reply that the reader waits
// for comes after them, so they are there when it gets to them), the rest
// through the worker. reading is the file whose READ is being answered:
// its pages are locked until then, so it is never pushed here.
func (p *prefetcher) window(l *listing, i int, reading *node) {
	var files int
	var bytes int64
	var head []*node
scan:
	for ; i < len(l.kids) && files < prefetchFiles && bytes < prefetchBytes; i++ {
		k := l.kids[i]
		size := k.size()
		if k == reading || k.Mode()&syscall.S_IFMT != syscall.S_IFREG || size <= 0 || size > prefetchMax {
			continue
		}
		if !k.cached.CompareAndSwap(false, true) {
			continue
		}
		files++
		bytes += size
		if len(head) < prefetchHead {
			head = append(head, k)
			continue
		}
		p.start()
		select {
		case p.jobs <- k:
		default:
			k.cached.Store(false) // the queue is full: leave it to its own read
			break scan
		}
	}
	if len(head) > 0 {
		buf := p.bufs.Get().(*[]byte)
		for _, k := range head {
			p.push(k, *buf)
		}
		p.bufs.Put(buf)
	}
}
