package mediafs

import (
	"errors"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660"
)

// Entry describes one file for listings; its JSON form is a line of
// `mediafs ls --json` (DESIGN.md, "ls").
type Entry struct {
	Path   string  `json:"path"` // absolute within the image, "/"-separated
	Type   string  `json:"type"` // file, dir, symlink, other
	Size   int64   `json:"size"`
	Alloc  int64   `json:"alloc"` // bytes allocated: ISO logical blocks, FAT clusters
	Mode   string  `json:"mode"`
	MTime  string  `json:"mtime,omitempty"` // RFC 3339; absent when unset or invalid
	Target string  `json:"target,omitempty"`
	Attrs  *string `json:"attrs,omitempty"` // FAT: letters of R, H, S, A, D, V
	UID    *uint32 `json:"uid,omitempty"`   // Rock Ridge
	GID    *uint32 `json:"gid,omitempty"`
	Nlink  uint32  `json:"nlink,omitempty"`
	Ino    uint64  `json:"ino,omitempty"`
	Rdev   string  `json:"rdev,omitempty"` // "major,minor" for device nodes
	Short  string  `json:"short_name,omitempty"`

	modTime time.Time
	mode    fs.FileMode
}

// ModTime is the entry's modification time (zero when unset).
func (e *Entry) ModTime() time.Time { return e.modTime }

// FileMode is the entry's mode.
func (e *Entry) FileMode() fs.FileMode { return e.mode }

// Describe builds the listing entry of the file at fs path name. fsys is
// asked for a symlink's target.
func Describe(fsys fs.FS, name string, fi fs.FileInfo) Entry {
	p := "/" + name
	if name == "." || name == "" {
		p = "/"
	}
	e := Entry{Path: p, Size: fi.Size(), Mode: UnixMode(fi.Mode()), mode: fi.Mode(), modTime: fi.ModTime()}
	switch {
	case fi.Mode().IsDir():
		e.Type = "dir"
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Type = "symlink"
		if rl, ok := fsys.(LinkFS); ok {
			if t, err := rl.ReadLink(name); err == nil {
				e.Target = t
			}
		}
	case fi.Mode().IsRegular():
		e.Type = "file"
	default:
		e.Type = "other"
	}
	if t := fi.ModTime(); !t.IsZero() {
		e.MTime = t.Format(time.RFC3339)
	}
	switch s := fi.Sys().(type) {
	case *iso9660.Sys:
		e.Alloc = s.Alloc
		e.Ino = s.Ino
		e.Nlink = s.Nlink
		if s.HasOwner {
			uid, gid := s.UID, s.GID
			e.UID, e.GID = &uid, &gid
		}
		if fi.Mode()&fs.ModeDevice != 0 {
			e.Rdev = strconv.FormatUint(uint64(s.DevMajor), 10) + "," + strconv.FormatUint(uint64(s.DevMinor), 10)
		}
	case *fat.Sys:
		e.Alloc = s.Alloc
		e.Ino = s.Ino
		a := s.AttrString
		e.Attrs = &a
		e.Short = s.ShortName
	}
	return e
}

// CleanPath turns a path as users write it on the command line into an io/fs
// path: a leading "/" is optional, and "/" or "." name the root.
func CleanPath(p string) (string, error) {
	if p == "" || p == "/" || p == "." {
		return ".", nil
	}
	if strings.ContainsRune(p, 0) {
		return "", errors.New("path contains a NUL byte")
	}
	q := strings.TrimLeft(p, "/")
	q = strings.TrimRight(q, "/")
	if q == "" {
		return ".", nil
	}
	for _, el := range strings.Split(q, "/") {
		if el == ".." {
			return "", &fs.PathError{Op: "open", Path: p, Err: errors.New("path may not contain ..")}
		}
	}
	q = path.Clean(q)
	if q == "." {
		return ".", nil
	}
	if !fs.ValidPath(q) {
		return "", &fs.PathError{Op: "open", Path: p, Err: fs.ErrInvalid}
	}
	return q, nil
}

// DisplayPath is how messages show an fs path: with a leading "/".
func DisplayPath(name string) string {
	if name == "." || name == "" {
		return "/"
	}
	return "/" + name
}

// UnixMode formats a mode as ls(1) does: "-rw-r--r--", "drwxr-xr-x",
// "lrwxrwxrwx", "crw-rw----", with s/S and t/T for the special bits.
// (fs.FileMode.String uses Go's own letters, such as "L" for a link.)
func UnixMode(m fs.FileMode) string {
	b := []byte("----------")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	case m&fs.ModeIrregular != 0:
		b[0] = '?'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	special := func(pos int, set bool, on, off byte) {
		if !set {
			return
		}
		if b[pos] == 'x' {
			b[pos] = on
		} else {
			b[pos] = off
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}

// DirIdentity returns what identifies a directory on the medium (its first
// cluster, or the first block of its extent), so that tree walks can skip
// a directory they have already been through: on a damaged or hostile
// medium two directory entries may name the same directory without either
// being an ancestor of the other (a cross-link), and a walk that follows
// both could take exponentially long.
func DirIdentity(fi fs.FileInfo) (uint64, bool) {
	if !fi.IsDir() {
		return 0, false
	}
	switch s := fi.Sys().(type) {
	case *fat.Sys:
		return uint64(s.FirstCluster), true
	case *iso9660.Sys:
		if len(s.Extents) > 0 {
			return uint64(s.Extents[0].Block), true
		}
	}
	return 0, false
}
