package device

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Range is a byte range of a medium: [Off, Off+Len).
type Range struct {
	Off, Len int64
}

// End is the first byte after the range.
func (r Range) End() int64 { return r.Off + r.Len }

// Faulty wraps a device and makes chosen byte ranges unreadable or
// unwritable, as bad sectors are. It can also add latency, stop answering
// altogether until Unblock (a drive that hangs), and drop every write after
// the N-th (a crash). Any sector that overlaps a bad range is bad.
//
// A failed read fills p up to the first bad sector and returns that many
// bytes with a *SectorError naming the bad sector; the error unwraps to
// ErrBadSector. Faulty is safe for concurrent use.
type Faulty struct {
	dev Device

	mu          sync.Mutex
	badRead     []Range
	badWrite    []Range
	latency     time.Duration
	blocked     chan struct{} // non-nil while the device does not answer
	dropAfter   int64         // writes after this many are dropped; <0: none
	writes      int64
	reads       int64
	failedReads int64
}

// NewFaulty wraps d; it starts healthy.
func NewFaulty(d Device) *Faulty { return &Faulty{dev: d, dropAfter: -1} }

// FailReads makes reads of the bytes [off, off+n) fail.
func (f *Faulty) FailReads(off, n int64) {
	f.mu.Lock()
	f.badRead = addRange(f.badRead, Range{off, n})
	f.mu.Unlock()
}

// FailWrites makes writes to the bytes [off, off+n) fail.
func (f *Faulty) FailWrites(off, n int64) {
	f.mu.Lock()
	f.badWrite = addRange(f.badWrite, Range{off, n})
	f.mu.Unlock()
}

// FailSectors makes reads and writes of n sectors from sector s fail.
func (f *Faulty) FailSectors(s, n int64) {
	ss := int64(f.dev.SectorSize())
	f.FailReads(s*ss, n*ss)
	f.FailWrites(s*ss, n*ss)
}

// Heal makes every sector good again.
func (f *Faulty) Heal() {
	f.mu.Lock()
	f.badRead, f.badWrite = nil, nil
	f.mu.Unlock()
}

// SetLatency delays every request by d.
func (f *Faulty) SetLatency(d time.Duration) {
	f.mu.Lock()
	f.latency = d
	f.mu.Unlock()
}

// Block makes every request wait until Unblock, as a drive that stopped
// answering does.
func (f *Faulty) Block() {
	f.mu.Lock()
	if f.blocked == nil {
		f.blocked = make(chan struct{})
	}
	f.mu.Unlock()
}

// Unblock lets waiting and later requests through.
func (f *Faulty) Unblock() {
	f.mu.Lock()
	if f.blocked != nil {
		close(f.blocked)
		f.blocked = nil
	}
	f.mu.Unlock()
}

// DropWritesAfter makes every write after the n-th from now succeed
// without reaching the medium, as if the machine had lost power. n < 0
// turns it off.
func (f *Faulty) DropWritesAfter(n int64) {
	f.mu.Lock()
	f.dropAfter = n
	f.writes = 0
	f.mu.Unlock()
}

// Counts reports the reads and writes requested so far, and how many reads
// failed.
func (f *Faulty) Counts() (reads, writes, failedReads int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads, f.writes, f.failedReads
}

func (f *Faulty) SectorSize() int { return f.dev.SectorSize() }
func (f *Faulty) Size() int64     { return f.dev.Size() }
func (f *Faulty) Sync() error     { return f.dev.Sync() }
func (f *Faulty) Close() error    { f.Unblock(); return f.dev.Close() }

// Unwrap returns the device under the wrapper.
func (f *Faulty) Unwrap() Device { return f.dev }

func (f *Faulty) wait() {
	f.mu.Lock()
	lat, ch := f.latency, f.blocked
	f.mu.Unlock()
	if ch != nil {
		<-ch
	}
	if lat > 0 {
		time.Sleep(lat)
	}
}

// firstBad returns the first bad byte of [off, off+n) in rs, or -1.
func firstBad(rs []Range, off, n int64) int64 {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].End() > off })
	if i < len(rs) && rs[i].Off < off+n {
		return max(rs[i].Off, off)
	}
	return -1
}

func (f *Faulty) ReadAt(p []byte, off int64) (int, error) {
	f.wait()
	f.mu.Lock()
	f.reads++
	ss := int64(f.dev.SectorSize())
	// Whole sectors are bad: widen the request to sectors before looking.
	lo := off / ss * ss
	hi := (off + int64(len(p)) + ss - 1) / ss * ss
	bad := firstBad(f.badRead, lo, hi-lo)
	if bad >= 0 {
		f.failedReads++
	}
	f.mu.Unlock()
	if bad < 0 {
		return f.dev.ReadAt(p, off)
	}
	sec := bad / ss
	good := max(sec*ss-off, 0)
	n := 0
	if good > 0 {
		var err error
		n, err = f.dev.ReadAt(p[:good], off)
		if err != nil {
			return n, err
		}
	}
	return n, &SectorError{Op: "read", Sector: sec, Err: ErrBadSector}
}

func (f *Faulty) WriteAt(p []byte, off int64) (int, error) {
	f.wait()
	f.mu.Lock()
	f.writes++
	drop := f.dropAfter >= 0 && f.writes > f.dropAfter
	ss := int64(f.dev.SectorSize())
	lo := off / ss * ss
	hi := (off + int64(len(p)) + ss - 1) / ss * ss
	bad := firstBad(f.badWrite, lo, hi-lo)
	f.mu.Unlock()
	if drop {
		return len(p), nil
	}
	if bad >= 0 {
		sec := bad / ss
		good := max(sec*ss-off, 0)
		n := 0
		if good > 0 {
			var err error
			if n, err = f.dev.WriteAt(p[:good], off); err != nil {
				return n, err
			}
		}
		return n, &SectorError{Op: "write", Sector: sec, Err: ErrBadSector}
	}
	return f.dev.WriteAt(p, off)
}

// addRange inserts r into the sorted, disjoint list rs, merging overlaps.
func addRange(rs []Range, r Range) []Range {
	if r.Len <= 0 {
		return rs
	}
	out := make([]Range, 0, len(rs)+1)
	for _, x := range rs {
		if x.End() < r.Off || x.Off > r.End() {
			out = append(out, x)
			continue
		}
		lo, hi := min(x.Off, r.Off), max(x.End(), r.End())
		r = Range{lo, hi - lo}
	}
	out = append(out, r)
	sort.Slice(out, func(i, j int) bool { return out[i].Off < out[j].Off })
	return out
}

// Timeout wraps a device so that a request that gets no answer within d
// fails with ErrTimeout instead of hanging its caller. A request stuck in
// the kernel cannot be cancelled: its goroutine is abandoned (Abandoned
// counts them) and the device is marked failed, so later requests fail at
// once rather than pile up behind a dead drive.
type Timeout struct {
	dev       Device
	d         time.Duration
	mu        sync.Mutex
	failed    bool
	abandoned int
}

// NewTimeout wraps dev with a per-request timeout d.
func NewTimeout(dev Device, d time.Duration) *Timeout { return &Timeout{dev: dev, d: d} }

func (t *Timeout) SectorSize() int { return t.dev.SectorSize() }
func (t *Timeout) Size() int64     { return t.dev.Size() }
func (t *Timeout) Close() error    { return t.dev.Close() }

// Unwrap returns the device under the wrapper.
func (t *Timeout) Unwrap() Device { return t.dev }

// Abandoned counts requests that never answered.
func (t *Timeout) Abandoned() int { t.mu.Lock(); defer t.mu.Unlock(); return t.abandoned }

// Failed reports whether a request timed out.
func (t *Timeout) Failed() bool { t.mu.Lock(); defer t.mu.Unlock(); return t.failed }

type ioResult struct {
	n   int
	err error
}

func (t *Timeout) do(op string, off int64, n int, f func(buf []byte) (int, error), buf []byte) (int, error) {
	sec := off / int64(t.dev.SectorSize())
	t.mu.Lock()
	failed := t.failed
	t.mu.Unlock()
	if failed {
		return 0, &SectorError{Op: op, Sector: sec, Err: fmt.Errorf("%w (the device stopped answering earlier)", ErrTimeout)}
	}
	done := make(chan ioResult, 1)
	go func() {
		m, err := f(buf)
		done <- ioResult{m, err}
	}()
	timer := time.NewTimer(t.d)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.n, r.err
	case <-timer.C:
		t.mu.Lock()
		t.failed = true
		t.abandoned++
		t.mu.Unlock()
		return 0, &SectorError{Op: op, Sector: sec, Err: fmt.Errorf("%w after %v", ErrTimeout, t.d)}
	}
}

func (t *Timeout) ReadAt(p []byte, off int64) (int, error) {
	// The abandoned goroutine must not write into the caller's buffer
	// later: it reads into its own.
	buf := make([]byte, len(p))
	n, err := t.do("read", off, len(p), func(b []byte) (int, error) { return t.dev.ReadAt(b, off) }, buf)
	if errors.Is(err, ErrTimeout) {
		return 0, err
	}
	copy(p, buf[:n])
	return n, err
}

func (t *Timeout) WriteAt(p []byte, off int64) (int, error) {
	buf := append([]byte(nil), p...)
	return t.do("write", off, len(p), func(b []byte) (int, error) { return t.dev.WriteAt(b, off) }, buf)
}

func (t *Timeout) Sync() error {
	_, err := t.do("sync", 0, 0, func([]byte) (int, error) { return 0, t.dev.Sync() }, nil)
	return err
}

// Retry wraps a device so that a request that fails with a media error is
// tried again, up to n more times. Requests that fail otherwise (out of
// range, read-only, a timeout: a dead drive is not asked again) are not
// retried.
type Retry struct {
	Device
	n int
}

// NewRetry wraps d with n retries.
func NewRetry(d Device, n int) *Retry { return &Retry{Device: d, n: n} }

// Unwrap returns the device under the wrapper.
func (r *Retry) Unwrap() Device { return r.Device }

func (r *Retry) ReadAt(p []byte, off int64) (n int, err error) {
	for try := 0; ; try++ {
		n, err = r.Device.ReadAt(p, off)
		if err == nil || try >= r.n || !errors.Is(err, ErrBadSector) {
			return n, err
		}
	}
}

func (r *Retry) WriteAt(p []byte, off int64) (n int, err error) {
	for try := 0; ; try++ {
		n, err = r.Device.WriteAt(p, off)
		if err == nil || try >= r.n || !errors.Is(err, ErrBadSector) {
			return n, err
		}
	}
}
