package device

import "os"

// hostFiler is implemented by devices whose bytes are a host file's bytes
// at a fixed offset, with nothing in between.
type hostFiler interface {
	hostFile() (f *os.File, base, avail int64, ok bool)
}

// HostFile returns the host file that holds d's bytes: d's byte x is the
// file's byte base+x, for x below avail. Only image files and partition
// windows and sector-size views of them qualify; a device with fault
// injection, a timeout, retries, raw CD sectors or a block device does not
// (ok is false), and its data must be read through ReadAt, which names
// the sector of any failure. It lets callers copy file data between host
// files in the kernel (sendfile), which saves copying every byte through
// user space twice.
func HostFile(d Device) (f *os.File, base, avail int64, ok bool) {
	h, is := d.(hostFiler)
	if !is {
		return nil, 0, 0, false
	}
	return h.hostFile()
}

func (d *File) hostFile() (*os.File, int64, int64, bool) {
	if d.closed.Load() || d.blockDev {
		return nil, 0, 0, false
	}
	return d.f, 0, d.dataSize.Load(), true
}

func (w *Window) hostFile() (*os.File, int64, int64, bool) {
	f, base, avail, ok := HostFile(w.Dev)
	if !ok {
		return nil, 0, 0, false
	}
	return f, base + w.Offset, max(0, min(avail-w.Offset, w.Len)), true
}

func (v *View) hostFile() (*os.File, int64, int64, bool) {
	f, base, avail, ok := HostFile(v.dev)
	if !ok {
		return nil, 0, 0, false
	}
	return f, base, min(avail, v.dev.Size()), true
}
