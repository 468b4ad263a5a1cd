package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660"
)

func newExtractCmd(g *globals) *cobra.Command {
	x := &extractor{g: g}
	var boot bool
	cmd := &cobra.Command{
		Use:   "extract [--keep-going] [--boot] IMAGE DEST [PATH...]",
		Short: "Copy the image's files (or the given paths) into the host directory DEST",
		Long: `extract copies the contents of the image's root, or of each PATH, into DEST,
which is created if missing. Directories, files, symlinks, modes and mtimes are
restored and existing files replaced, as tar does. Nothing is ever written
outside DEST: names that would escape are refused, and symlinks whose target is
absolute or leaves DEST are skipped with a warning unless --unsafe-links is
given. With --boot, the El Torito boot images are written instead, as
DEST/boot-N.img.`,
		Args: argsBetween(2, -1, "extract [--keep-going] [--boot] IMAGE DEST [PATH...]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			defer g.laterWarnings(f, args[0])
			x.fsys = f
			if err := os.MkdirAll(args[1], 0o755); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			// DEST itself may be a symlink to a directory, as tar -C allows;
			// below it, nothing is followed.
			dest, err := filepath.EvalSymlinks(args[1])
			if err == nil {
				dest, err = filepath.Abs(dest)
			}
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			x.dest = dest
			if boot {
				if len(args) > 2 {
					return usageErr("extract --boot takes no PATH")
				}
				return x.boot()
			}
			paths := args[2:]
			if len(paths) == 0 {
				paths = []string{"/"}
			}
			if x.reportPath != "" {
				rf, err := os.Create(x.reportPath)
				if err != nil {
					return usageErr("--report: %v", err)
				}
				defer rf.Close()
				x.reportEnc = json.NewEncoder(rf)
			}
			return x.run(paths)
		},
	}
	cmd.Flags().BoolVar(&x.keepGoing, "keep-going", false, "go on after a failed file, writing what can be read of damaged files; exit 1 at the end if anything failed")
	cmd.Flags().BoolVar(&x.noPartial, "no-partial", false, "remove damaged files instead of keeping what could be read")
	cmd.Flags().StringVar(&x.reportPath, "report", "", "write one JSON object per failed path (path, error, lost byte ranges) to `FILE`")
	cmd.Flags().BoolVar(&x.unsafeLinks, "unsafe-links", false, "also create symlinks whose target is absolute or leaves DEST")
	cmd.Flags().IntVar(&x.workers, "jobs", 0, "files copied at once (default: 2 per CPU)")
	cmd.Flags().BoolVar(&boot, "boot", false, "extract the El Torito boot images as DEST/boot-N.img")
	return cmd
}

type extractor struct {
	g           *globals
	fsys        mediafs.FS
	dest        string
	keepGoing   bool
	noPartial   bool
	reportPath  string
	reportEnc   *json.Encoder
	reportMu    sync.Mutex
	unsafeLinks bool
	workers     int

	failed   atomic.Bool
	stop     atomic.Bool
	mu       sync.Mutex
	dirs     []dirMeta
	links    []linkJob
	seenDirs map[uint64]string
	bar      *progressbar.ProgressBar
	isRoot   bool
	umask    fs.FileMode
	written  atomic.Int64
}

type dirMeta struct {
	host  string
	mode  fs.FileMode
	mtime time.Time
}

type linkJob struct {
	host, target, image string
	mtime               time.Time
}

type fileJob struct {
	name string // fs path
	host string
	fi   fs.FileInfo
}

// fail reports a failure; other failures (a directory that cannot be
// read) also go to --report, with no ranges.
func (x *extractor) fail(format string, a ...any) {
	x.g.errorf(format, a...)
	x.failed.Store(true)
	if !x.keepGoing {
		x.stop.Store(true)
	}
}

func (x *extractor) warn(format string, a ...any) {
	if !x.g.quiet {
		x.g.warn(format, a...)
	}
}

func (x *extractor) run(paths []string) error {
	x.isRoot = os.Geteuid() == 0
	x.seenDirs = map[uint64]string{}
	x.umask = fs.FileMode(unix.Umask(0))
	unix.Umask(int(x.umask))
	if x.workers <= 0 {
		x.workers = 2 * runtime.GOMAXPROCS(0)
	}
	if !x.g.quiet && isTerminal(x.g.stderr) {
		var total int64
		for _, p := range paths {
			if name, err := mediafs.CleanPath(p); err == nil {
				total += x.treeSize(name)
			}
		}
		x.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("extracting"), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}

	jobs := make(chan fileJob, 256)
	var wg sync.WaitGroup
	for range x.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, copyBufSize)
			for j := range jobs {
				if x.stop.Load() {
					continue
				}
				x.file(j, buf)
			}
		}()
	}
	for _, p := range paths {
		if x.stop.Load() {
			break
		}
		name, err := mediafs.CleanPath(p)
		if err != nil {
			x.fail("%v", err)
			continue
		}
		fi, err := statNoFollow(x.fsys, name)
		if err != nil {
			x.fail("%v", err)
			continue
		}
		host := x.dest
		if !fi.IsDir() {
			host = filepath.Join(x.dest, safeName(path.Base(name)))
		}
		x.entry(name, host, fi, jobs, true)
	}
	close(jobs)
	wg.Wait()
	x.finishLinks()
	x.finishDirs()
	if x.bar != nil {
		x.bar.Finish()
	}
	if x.failed.Load() {
		return errSomeFailed
	}
	return nil
}

// treeSize sums the sizes of the regular files below name (for the
// progress bar only; errors are reported by the extraction itself).
func (x *extractor) treeSize(name string) int64 {
	var total int64
	seen := map[uint64]bool{}
	fs.WalkDir(x.fsys, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, ierr := d.Info()
		if ierr != nil {
			return nil
		}
		if id, ok := mediafs.DirIdentity(fi); ok {
			if seen[id] {
				return fs.SkipDir // cross-linked: counted once
			}
			seen[id] = true
		}
		if d.Type().IsRegular() {
			total += fi.Size()
		}
		return nil
	})
	return total
}

// safeName neutralises a name that could escape its directory.
func safeName(n string) string {
	if n == "." || n == ".." || n == "" {
		return "_" + n
	}
	return strings.NewReplacer("/", "_", "\x00", "_").Replace(n)
}

func (x *extractor) entry(name, host string, fi fs.FileInfo, jobs chan<- fileJob, top bool) {
	if x.stop.Load() {
		return
	}
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		if id, ok := mediafs.DirIdentity(fi); ok {
			x.mu.Lock()
			prev, dup := x.seenDirs[id]
			if !dup {
				x.seenDirs[id] = name
			}
			x.mu.Unlock()
			if dup {
				err := fmt.Errorf("%s: same directory as %s (cross-linked on the medium); not extracted twice", mediafs.DisplayPath(name), mediafs.DisplayPath(prev))
				x.report(mediafs.DisplayPath(name), err, nil)
				x.fail("%v", err)
				return
			}
		}
		if err := x.mkdir(host); err != nil {
			x.fail("%v", err)
			return
		}
		x.mu.Lock()
		x.dirs = append(x.dirs, dirMeta{host: host, mode: hostPerm(fi), mtime: fi.ModTime()})
		x.mu.Unlock()
		ents, err := x.fsys.ReadDir(name)
		if err != nil {
			// A damaged directory still yields the entries of its readable
			// sectors; the report gives the directory's lost bytes.
			x.report(mediafs.DisplayPath(name), err, mediafs.LostRanges(err))
			x.fail("%v", err)
		}
		for _, de := range ents {
			if x.stop.Load() {
				return
			}
			child := de.Name()
			if name != "." {
				child = name + "/" + de.Name()
			}
			safe := safeName(de.Name())
			if safe != de.Name() {
				x.warn("%s: name %q would leave its directory; written as %q", mediafs.DisplayPath(name), de.Name(), safe)
			}
			cfi, err := de.Info()
			if err != nil {
				x.fail("%v", err)
				continue
			}
			x.entry(child, filepath.Join(host, safe), cfi, jobs, false)
		}
	case mode.IsRegular():
		jobs <- fileJob{name: name, host: host, fi: fi}
	case mode&fs.ModeSymlink != 0:
		target := ""
		if l, ok := x.fsys.(mediafs.LinkFS); ok {
			t, err := l.ReadLink(name)
			if err != nil {
				x.fail("%v", err)
				return
			}
			target = t
		}
		x.mu.Lock()
		x.links = append(x.links, linkJob{host: host, target: target, image: name, mtime: fi.ModTime()})
		x.mu.Unlock()
	default:
		x.special(name, host, fi)
	}
}

// mkdir makes a directory, replacing a file or symlink in its way, and
// makes sure what is there is a real directory, so that nothing is written
// through a symlink.
func (x *extractor) mkdir(host string) error {
	err := os.Mkdir(host, 0o700)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	st, lerr := os.Lstat(host)
	if lerr != nil {
		return lerr
	}
	if st.IsDir() {
		return os.Chmod(host, st.Mode().Perm()|0o700)
	}
	if err := os.Remove(host); err != nil {
		return err
	}
	return os.Mkdir(host, 0o700)
}

func (x *extractor) file(j fileJob, buf []byte) {
	disp := mediafs.DisplayPath(j.name)
	src, err := x.fsys.Open(j.name)
	if err != nil {
		x.report(disp, err, []device.Range{{Off: 0, Len: j.fi.Size()}})
		x.fail("%v", err)
		return
	}
	defer src.Close()
	// Create it anew; if something is in the way, replace it (as tar
	// does), never writing through a link.
	perm := hostPerm(j.fi)
	out, err := os.OpenFile(j.host, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if errors.Is(err, fs.ErrExist) {
		if st, lerr := os.Lstat(j.host); lerr == nil && st.IsDir() {
			err = os.RemoveAll(j.host)
		} else {
			err = os.Remove(j.host)
		}
		if err == nil {
			out, err = os.OpenFile(j.host, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
		}
	}
	if err != nil {
		x.fail("extract %s: %v", disp, err)
		return
	}
	var progress func(int64)
	if x.bar != nil {
		progress = func(n int64) { x.bar.Add64(n) }
	}
	size := j.fi.Size()
	done, rerr := mediafs.CopyTo(out, x.fsys, src, size, buf, progress)
	lost := []device.Range{{Off: done, Len: size - done}}
	if rerr != nil && x.keepGoing && device.IsMediaError(rerr) {
		// Go around the bad sectors: what can be read is kept, the rest
		// stays a hole of zeros, and the report says where.
		lost, rerr = mediafs.Salvage(out, src, size, buf, nil)
	}
	if rerr != nil {
		var pe *fs.PathError
		if !errors.As(rerr, &pe) {
			rerr = fmt.Errorf("extract %s: %w", disp, rerr)
		}
		x.report(disp, rerr, lost)
	}
	// The umask may have taken bits away; put them back (one syscall
	// saved per file where it did not).
	if perm&^x.umask != perm {
		if err := out.Chmod(perm); err != nil && rerr == nil {
			rerr = fmt.Errorf("extract %s: %w", disp, err)
		}
	}
	if err := out.Close(); err != nil && rerr == nil {
		rerr = fmt.Errorf("extract %s: %w", disp, err)
	}
	if mt := j.fi.ModTime(); !mt.IsZero() {
		os.Chtimes(j.host, mt, mt)
	}
	if rerr != nil {
		if x.noPartial {
			os.Remove(j.host)
		}
		x.fail("%v", rerr)
	}
}

// reportLine is one line of --report: a path that failed, why (the
// message names the sector), and the byte ranges of the file that were
// lost.
type reportLine struct {
	Path   string     `json:"path"`
	Error  string     `json:"error"`
	Ranges [][2]int64 `json:"ranges"`
}

func (x *extractor) report(path string, err error, lost []device.Range) {
	if x.reportEnc == nil {
		return
	}
	l := reportLine{Path: path, Error: err.Error(), Ranges: [][2]int64{}}
	for _, r := range lost {
		if r.Len > 0 {
			l.Ranges = append(l.Ranges, [2]int64{r.Off, r.Len})
		}
	}
	x.reportMu.Lock()
	x.reportEnc.Encode(l)
	x.reportMu.Unlock()
}

// inside reports whether a symlink at host pointing to target stays inside
// DEST.
func (x *extractor) inside(host, target string) bool {
	if target == "" || filepath.IsAbs(target) || strings.HasPrefix(target, "/") {
		return false
	}
	res := filepath.Join(filepath.Dir(host), target)
	rel, err := filepath.Rel(x.dest, res)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// finishLinks makes the symlinks last, so that no file or directory is
// ever written through one of them.
func (x *extractor) finishLinks() {
	for _, l := range x.links {
		if x.stop.Load() {
			return
		}
		disp := mediafs.DisplayPath(l.image)
		if !x.unsafeLinks && !x.inside(l.host, l.target) {
			x.warn("%s: symlink to %q leaves the destination; skipped (use --unsafe-links to keep it)", disp, l.target)
			continue
		}
		if st, err := os.Lstat(l.host); err == nil {
			if st.IsDir() {
				os.RemoveAll(l.host)
			} else {
				os.Remove(l.host)
			}
		}
		if err := os.Symlink(l.target, l.host); err != nil {
			x.fail("extract %s: %v", disp, err)
			continue
		}
		if !l.mtime.IsZero() {
			ts := []unix.Timespec{unix.NsecToTimespec(l.mtime.UnixNano()), unix.NsecToTimespec(l.mtime.UnixNano())}
			unix.UtimesNanoAt(unix.AT_FDCWD, l.host, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
}

// finishDirs sets the directories' modes and times, deepest first, once
// their contents are written.
func (x *extractor) finishDirs() {
	slices.SortFunc(x.dirs, func(a, b dirMeta) int { return len(b.host) - len(a.host) })
	for _, d := range x.dirs {
		os.Chmod(d.host, d.mode)
		if !d.mtime.IsZero() {
			os.Chtimes(d.host, d.mtime, d.mtime)
		}
	}
}

// special makes device nodes and FIFOs when running as root; otherwise
// they are skipped with a warning.
func (x *extractor) special(name, host string, fi fs.FileInfo) {
	disp := mediafs.DisplayPath(name)
	mode := fi.Mode()
	if !x.isRoot {
		x.warn("%s: %s skipped (making device nodes and FIFOs needs root)", disp, describeType(mode))
		return
	}
	var kind uint32
	var dev int
	switch {
	case mode&fs.ModeNamedPipe != 0:
		kind = unix.S_IFIFO
	case mode&fs.ModeCharDevice != 0:
		kind = unix.S_IFCHR
	case mode&fs.ModeDevice != 0:
		kind = unix.S_IFBLK
	case mode&fs.ModeSocket != 0:
		x.warn("%s: socket skipped", disp)
		return
	default:
		x.warn("%s: file of unknown type skipped", disp)
		return
	}
	if s, ok := fi.Sys().(*iso9660.Sys); ok {
		dev = int(unix.Mkdev(s.DevMajor, s.DevMinor))
	}
	os.Remove(host)
	if err := unix.Mknod(host, kind|uint32(mode.Perm()), dev); err != nil {
		x.fail("extract %s: %v", disp, err)
		return
	}
	if mt := fi.ModTime(); !mt.IsZero() {
		os.Chtimes(host, mt, mt)
	}
}

// hostPerm is the permission an extracted file or directory gets. Media
// with permissions of their own (Rock Ridge) keep them, less set-id bits.
// FAT has only attributes: a file is 0644, or 0444 with the read-only
// attribute, and a directory 0755, as mtools and the Linux vfat driver
// give them.
func hostPerm(fi fs.FileInfo) fs.FileMode {
	if s, ok := fi.Sys().(*fat.Sys); ok {
		switch {
		case fi.IsDir():
			return 0o755
		case s.Attrs&0x01 != 0:
			return 0o444
		default:
			return 0o644
		}
	}
	return fi.Mode().Perm() | fi.Mode()&fs.ModeSticky
}

func describeType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

func (x *extractor) boot() error {
	entries := x.fsys.Info().Boot
	if len(entries) == 0 {
		return &exitError{code: exitFailed, err: errors.New("extract --boot: the image has no El Torito boot catalog")}
	}
	for _, e := range entries {
		r, size, err := bootImage(x.fsys, e.Index)
		if err != nil {
			x.fail("%v", err)
			continue
		}
		host := filepath.Join(x.dest, fmt.Sprintf("boot-%d.img", e.Index))
		out, err := os.Create(host)
		if err != nil {
			x.fail("%v", err)
			continue
		}
		_, err = mediafs.CopyReaderAt(out, r, size, nil, nil)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			x.fail("boot image %d: %v", e.Index, err)
		}
	}
	if x.failed.Load() {
		return errSomeFailed
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
