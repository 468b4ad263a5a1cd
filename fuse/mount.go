package fuse

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
)

// Options control a mount.
type Options struct {
	// Writable serves changes; the file system must be a
	// mediafs.WritableFS (FAT opened with mediafs.OpenWritable).
	// Otherwise the mount is read-only and every change fails with EROFS.
	Writable bool
	// AllowOther lets other users than the mounting one in (FUSE
	// allow_other; for users other than root, /etc/fuse.conf must say
	// user_allow_other). The modes shown are enforced either way.
	AllowOther bool
	// Debug logs every FUSE request and reply to Logger.
	Debug bool
	// Logger receives debug output and go-fuse's warnings (default: the
	// standard logger, which writes to stderr).
	Logger *log.Logger
	// UID and GID own every file when OwnerSet; otherwise the mounting
	// process's real user and group do.
	UID, GID uint32
	OwnerSet bool
	// FsName is the source shown in the mount table (df, mount), e.g.
	// the image's path; "mediafs" when empty.
	FsName string
	// SyncAfter is how long after the first change since the last sync a
	// writable mount syncs the volume (commits the metadata batch and marks
	// the volume clean), so that a crash or a pulled plug later finds it
	// clean. 0 means 5 seconds; a negative value syncs only on fsync and
	// at unmount.
	SyncAfter time.Duration
	// CloseTimeout bounds how long Close waits for requests under way
	// (a medium that hangs, without an I/O timeout) before it gives up on
	// them; 0 means 5 seconds.
	CloseTimeout time.Duration
}

// Timeouts for the kernel's caches.
const (
	roTimeout = time.Hour   // read-only media do not change under the mount
	rwTimeout = time.Second // as libfuse's defaults
	maxIO     = 1 << 20     // max_read and max_write: 256 pages, the kernel's limit
)

// ErrNoFUSE is returned by Mount when /dev/fuse is missing or cannot be
// opened.
var ErrNoFUSE = errors.New("FUSE is not available")

// fusermountPath finds fusermount3 (or fuse 2's fusermount) as go-fuse
// does: on $PATH, else in /bin. A variable so that tests can take it away.
var fusermountPath = func() (string, error) {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		if p, err := exec.LookPath(filepath.Join("/bin", name)); err == nil {
			return p, nil
		}
	}
	return "", errors.New("fusermount3 not found on $PATH or in /bin: install fuse3 (Debian and Ubuntu: apt install fuse3)")
}

// devFuse is the FUSE device (a variable for the tests).
var devFuse = "/dev/fuse"

// Server is a mounted file system.
type Server struct {
	srv        *gofuse.Server
	m          *mount
	mountpoint string
	done       chan struct{} // closed when the kernel has ended the session

	mu   sync.Mutex
	lazy bool

	closeOnce sync.Once
	closeErr  error
}

// Mount mounts fsys on mountpoint and starts serving it. It returns once
// the kernel has the mount. The caller keeps fsys: after Close it may (and
// should) close it.
func Mount(mountpoint string, fsys mediafs.FS, o Options) (*Server, error) {
	if err := checkFUSE(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(mountpoint); err != nil {
		return nil, fmt.Errorf("mount point: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("mount point %s is not a directory", mountpoint)
	}
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return nil, err
	}
	m, err := newMount(fsys, o)
	if err != nil {
		return nil, err
	}
	root, err := m.newRoot()
	if err != nil {
		m.closeHost()
		return nil, err
	}
	opts := m.goFuseOptions(o, root)
	var raw gofuse.RawFileSystem = gofs.NewNodeFS(root, opts)
	if !m.writable {
		m.lists = &listingFS{RawFileSystem: raw}
		raw = m.lists
	}
	srv, err := gofuse.NewServer(raw, abs, &opts.MountOptions)
	if err == nil {
		go srv.Serve()
		err = srv.WaitMount()
	}
	if err != nil {
		m.closeHost()
		return nil, fmt.Errorf("mounting on %s: %w", abs, err)
	}
	s := &Server{srv: srv, m: m, mountpoint: abs, done: make(chan struct{})}
	go func() {
		srv.Wait()
		close(s.done)
	}()
	return s, nil
}

// checkFUSE says clearly what is missing, before go-fuse would say it less
// clearly.
func checkFUSE() error {
	f, err := os.OpenFile(devFuse, os.O_RDWR, 0)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%w: %s does not exist (load the fuse kernel module: modprobe fuse; in a container, pass the device: --device /dev/fuse)", ErrNoFUSE, devFuse)
		case errors.Is(err, fs.ErrPermission):
			return fmt.Errorf("%w: %s: %v", ErrNoFUSE, devFuse, err)
		}
		return fmt.Errorf("%w: %v", ErrNoFUSE, err)
	}
	f.Close()
	if _, err := fusermountPath(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoFUSE, err)
	}
	return nil
}

func (m *mount) goFuseOptions(o Options, root *node) *gofs.Options {
	entry, attr, neg := roTimeout, roTimeout, roTimeout
	if m.writable {
		entry, attr, neg = rwTimeout, rwTimeout, 0
	}
	mo := []string{"default_permissions"}
	if !m.writable {
		mo = append(mo, "ro")
	}
	name := o.FsName
	if name == "" {
		name = "mediafs"
	}
	logger := o.Logger
	if logger == nil {
		logger = log.Default()
	}
	return &gofs.Options{
		MountOptions: gofuse.MountOptions{
			AllowOther:           o.AllowOther,
			Options:              mo,
			MaxWrite:             maxIO,
			MaxReadAhead:         maxIO,
			MaxBackground:        64,
			FsName:               name,
			Name:                 "mediafs",
			DisableXAttrs:        true,
			Debug:                o.Debug,
			Logger:               logger,
			EnableSymlinkCaching: !m.writable,
		},
		EntryTimeout:    &entry,
		AttrTimeout:     &attr,
		NegativeTimeout: &neg,
		NullPermissions: true, // modes are always set; a Rock Ridge 0000 is a real 0000
		UID:             m.uid,
		GID:             m.gid,
		RootStableAttr:  &gofs.StableAttr{Ino: root.id.ino, Gen: root.id.gen},
		Logger:          logger,
	}
}

// Mountpoint is the absolute path of the mount.
func (s *Server) Mountpoint() string { return s.mountpoint }

// Done is closed when the kernel has ended the session: after Unmount, or
// when someone ran fusermount3 -u or umount.
func (s *Server) Done() <-chan struct{} { return s.done }

// Wait blocks until the kernel has ended the session.
func (s *Server) Wait() { <-s.done }

// LazilyUnmounted reports whether Unmount had to detach the mount while
// files were still open on it.
func (s *Server) LazilyUnmounted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lazy
}

// unmountGrace is how long Unmount waits for the kernel to end a session
// it detached lazily (files were open).
var unmountGrace = 2 * time.Second

// Unmount takes the file system off its mount point. If files are open
// there (the kernel says EBUSY), it detaches the mount lazily, as
// `fusermount3 -u -z` does: the mount point is free at once, and the
// files still open are served until they are closed or until Close,
// whichever comes first; Unmount waits a short while for them. It is not
// an error if the file system was unmounted already.
func (s *Server) Unmount() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	err := s.srv.Unmount()
	if err == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil // unmounted by someone else meanwhile
	default:
	}
	if lerr := lazyUnmount(s.mountpoint); lerr != nil {
		return fmt.Errorf("unmounting %s: %v; lazily: %v", s.mountpoint, err, lerr)
	}
	s.mu.Lock()
	s.lazy = true
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(unmountGrace):
	}
	return nil
}

// lazyUnmount detaches a busy mount: directly when we may (root), else
// with fusermount3 -u -z.
func lazyUnmount(dir string) error {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err == nil {
		return nil
	}
	bin, err := fusermountPath()
	if err != nil {
		return err
	}
	out, err := exec.Command(bin, "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -u -z: %v: %s", bin, err, out)
	}
	return nil
}

// Close stops serving: requests under way finish (for at most
// Options.CloseTimeout), later ones fail with EIO, and then a writable
// volume is synced (its metadata committed and the volume marked clean,
// unless an error made it stickily dirty). It does not close the file
// system. Call it after Unmount or after Wait; closing a mount that the
// kernel still has makes its files fail with EIO.
// A second Close returns what the first did (a volume that could not be
// synced is not reported as synced).
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	if !s.m.stop(s.m.closeTimeout) {
		return errors.New("requests to the medium did not finish; the volume was not synced")
	}
	var err error
	if s.m.writable {
		if serr := s.m.wfs.Sync(); serr != nil {
			err = fmt.Errorf("syncing the volume: %w", serr)
		}
	}
	// The spliced reads of a session that is still going (a lazy unmount
	// with files open) may use the image descriptor; it stays open then,
	// until the process ends.
	select {
	case <-s.done:
		s.m.closeHost()
	default:
	}
	return err
}

// hostData is the image file that a read-only mount's reads are spliced
// from: a descriptor of its own (so that closing the file system cannot
// pull it from under a reply in flight), and where the volume's bytes are.
type hostData struct {
	fd    int
	base  int64
	avail int64
}

// openHost finds the plain image file under fsys, if there is one.
func openHost(fsys mediafs.FS) *hostData {
	dh, ok := fsys.(interface{ Device() device.Device })
	if !ok {
		return nil
	}
	f, base, avail, ok := device.HostFile(dh.Device())
	if !ok {
		return nil
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil
	}
	return &hostData{fd: fd, base: base, avail: avail}
}

func (m *mount) closeHost() {
	if m.host != nil {
		syscall.Close(m.host.fd)
		m.host = nil
	}
}
