package device

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Memory is a device held in memory, for tests and for building images.
type Memory struct {
	mu         sync.RWMutex
	buf        []byte
	sectorSize int
	readOnly   bool
	closed     atomic.Bool
}

// NewMemory returns a device over buf. If len(buf) is not a multiple of the
// sector size, the missing tail reads as zeros (and is allocated on write).
func NewMemory(buf []byte, sectorSize int) *Memory {
	if !ValidSectorSize(sectorSize) {
		panic(fmt.Sprintf("device.NewMemory: invalid sector size %d", sectorSize))
	}
	if r := roundUp(int64(len(buf)), sectorSize); r != int64(len(buf)) {
		nb := make([]byte, r)
		copy(nb, buf)
		buf = nb
	}
	return &Memory{buf: buf, sectorSize: sectorSize}
}

// SetReadOnly makes further writes fail with ErrReadOnly.
func (m *Memory) SetReadOnly(ro bool) { m.mu.Lock(); m.readOnly = ro; m.mu.Unlock() }

// Bytes returns the device's contents (not a copy).
func (m *Memory) Bytes() []byte { m.mu.RLock(); defer m.mu.RUnlock(); return m.buf }

func (m *Memory) SectorSize() int { return m.sectorSize }
func (m *Memory) Size() int64     { m.mu.RLock(); defer m.mu.RUnlock(); return int64(len(m.buf)) }
func (m *Memory) Sync() error {
	if m.closed.Load() {
		return ErrClosed
	}
	return nil
}
func (m *Memory) Close() error {
	if m.closed.Swap(true) {
		return ErrClosed
	}
	return nil
}

func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	if m.closed.Load() {
		return 0, &SectorError{Op: "read", Sector: off / int64(m.sectorSize), Err: ErrClosed}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := checkRange("read", off, len(p), int64(len(m.buf)), m.sectorSize); err != nil {
		return 0, err
	}
	return copy(p, m.buf[off:]), nil
}

func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	if m.closed.Load() {
		return 0, &SectorError{Op: "write", Sector: off / int64(m.sectorSize), Err: ErrClosed}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readOnly {
		return 0, &SectorError{Op: "write", Sector: off / int64(m.sectorSize), Err: ErrReadOnly}
	}
	if err := checkRange("write", off, len(p), int64(len(m.buf)), m.sectorSize); err != nil {
		return 0, err
	}
	return copy(m.buf[off:], p), nil
}

// Window is a device that is a contiguous part of another device: a
// partition. Offsets are relative to the window's start; sector numbers in
// errors stay absolute on the underlying medium.
type Window struct {
	Dev    Device
	Offset int64 // bytes, a multiple of Dev.SectorSize()
	Len    int64 // bytes, a multiple of Dev.SectorSize()
}

// NewWindow returns the part of d that starts at byte offset off and is n
// bytes long. Both must be whole sectors of d; n is clipped to the end of d.
func NewWindow(d Device, off, n int64) (*Window, error) {
	ss := int64(d.SectorSize())
	if off < 0 || n < 0 || off%ss != 0 || n%ss != 0 {
		return nil, fmt.Errorf("partition window [%d, +%d) is not aligned to %d-byte sectors", off, n, ss)
	}
	if off > d.Size() {
		return nil, fmt.Errorf("partition starts at byte %d, beyond the end of the %d-byte medium", off, d.Size())
	}
	if off+n > d.Size() {
		n = d.Size() - off
	}
	return &Window{Dev: d, Offset: off, Len: n}, nil
}

func (w *Window) SectorSize() int { return w.Dev.SectorSize() }
func (w *Window) Size() int64     { return w.Len }
func (w *Window) Sync() error     { return w.Dev.Sync() }
func (w *Window) Close() error    { return w.Dev.Close() }

func (w *Window) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange("read", off, len(p), w.Len, w.SectorSize()); err != nil {
		e := err.(*SectorError)
		e.Sector += w.Offset / int64(w.SectorSize())
		return 0, e
	}
	return w.Dev.ReadAt(p, w.Offset+off)
}

func (w *Window) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange("write", off, len(p), w.Len, w.SectorSize()); err != nil {
		e := err.(*SectorError)
		e.Sector += w.Offset / int64(w.SectorSize())
		return 0, e
	}
	return w.Dev.WriteAt(p, w.Offset+off)
}

// View presents a device with a different, larger sector size: an image
// file opened with 512-byte sectors holding a file system laid out in 2048-
// byte sectors, say. The medium is rounded up to whole sectors of the new
// size; the part of the last sector that lies beyond the underlying device
// reads as zeros. Sector numbers in errors are re-expressed in the new unit.
type View struct {
	dev        Device
	sectorSize int
	size       int64
}

// NewView presents d with sectors of sectorSize bytes, which must be a
// multiple of d's own sector size.
func NewView(d Device, sectorSize int) (Device, error) {
	if !ValidSectorSize(sectorSize) {
		return nil, fmt.Errorf("unsupported sector size %d (want 512, 1024, 2048 or 4096)", sectorSize)
	}
	if sectorSize == d.SectorSize() {
		return d, nil
	}
	if sectorSize%d.SectorSize() != 0 {
		return nil, fmt.Errorf("sector size %d is smaller than the medium's %d", sectorSize, d.SectorSize())
	}
	return &View{dev: d, sectorSize: sectorSize, size: roundUp(d.Size(), sectorSize)}, nil
}

func (v *View) SectorSize() int { return v.sectorSize }
func (v *View) Size() int64     { return v.size }
func (v *View) Sync() error     { return v.dev.Sync() }
func (v *View) Close() error    { return v.dev.Close() }

func (v *View) renumber(err error) error {
	if se, ok := err.(*SectorError); ok {
		return &SectorError{Op: se.Op, Sector: se.Sector * int64(v.dev.SectorSize()) / int64(v.sectorSize), Err: se.Err}
	}
	return err
}

func (v *View) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange("read", off, len(p), v.size, v.sectorSize); err != nil {
		return 0, err
	}
	want := len(p)
	if avail := v.dev.Size() - off; avail < int64(want) {
		if avail < 0 {
			avail = 0
		}
		clear(p[avail:])
		want = int(avail)
	}
	if want == 0 {
		return len(p), nil
	}
	n, err := v.dev.ReadAt(p[:want], off)
	if err != nil {
		return n, v.renumber(err)
	}
	return len(p), nil
}

func (v *View) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange("write", off, len(p), v.size, v.sectorSize); err != nil {
		return 0, err
	}
	if off+int64(len(p)) > v.dev.Size() {
		return 0, &SectorError{Op: "write", Sector: v.dev.Size() / int64(v.sectorSize), Err: ErrOutOfRange}
	}
	n, err := v.dev.WriteAt(p, off)
	return n, v.renumber(err)
}

// Unwrap returns the device under the view.
func (v *View) Unwrap() Device { return v.dev }

// Strict wraps a device and refuses every request that does not cover whole
// sectors or that reaches past the last sector, as a real drive does. Tests
// run the drivers through it (T-ISO-3, T-FAT-2). It also counts requests, so
// that tests can check that reads are issued in large runs.
type Strict struct {
	Device
	Reads, Writes atomic.Int64
	Bytes         atomic.Int64
}

// NewStrict wraps d.
func NewStrict(d Device) *Strict { return &Strict{Device: d} }

func (s *Strict) check(op string, p []byte, off int64) error {
	ss := int64(s.SectorSize())
	if off < 0 || off%ss != 0 || int64(len(p))%ss != 0 || len(p) == 0 {
		return &SectorError{Op: op, Sector: off / ss, Err: fmt.Errorf("%w: %d bytes at byte %d", ErrUnaligned, len(p), off)}
	}
	if off+int64(len(p)) > s.Size() {
		return &SectorError{Op: op, Sector: off / ss, Err: ErrOutOfRange}
	}
	return nil
}

func (s *Strict) ReadAt(p []byte, off int64) (int, error) {
	if err := s.check("read", p, off); err != nil {
		return 0, err
	}
	s.Reads.Add(1)
	s.Bytes.Add(int64(len(p)))
	return s.Device.ReadAt(p, off)
}

func (s *Strict) WriteAt(p []byte, off int64) (int, error) {
	if err := s.check("write", p, off); err != nil {
		return 0, err
	}
	s.Writes.Add(1)
	return s.Device.WriteAt(p, off)
}
