package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mediafs/mediafs"
)

func newInfoCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info [--json] IMAGE",
		Short: "Describe the volume: file system, label, sizes, boot entries, partitions",
		Args:  argsBetween(1, 1, "info [--json] IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			in := f.Info()
			if in.Warnings == nil {
				in.Warnings = []string{}
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(in)
			}
			printInfo(g.stdout, in)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func printInfo(w io.Writer, in mediafs.VolumeInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	p := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	p("file system", in.FS)
	p("label", in.Label)
	if in.Serial != "" {
		p("serial", in.Serial)
	}
	p("sector size", in.SectorSize)
	if strings.HasPrefix(in.FS, "fat") {
		p("cluster size", in.BlockSize)
	} else {
		p("logical block size", in.BlockSize)
	}
	p("size", in.Size)
	if in.Free != nil {
		p("free", *in.Free)
	}
	if in.Dirty != nil {
		p("dirty", *in.Dirty)
	}
	if in.Joliet != nil {
		p("joliet", *in.Joliet)
		p("rock ridge", *in.RockRidge)
		p("el torito", *in.ElTorito)
		p("name space", in.Namespace)
	}
	keys := make([]string, 0, len(in.Details))
	for k := range in.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p(strings.ReplaceAll(k, "_", " "), in.Details[k])
	}
	for _, b := range in.Boot {
		p(fmt.Sprintf("boot %d", b.Index), fmt.Sprintf("platform %s, %s, emulation %s, load segment 0x%04x, system type 0x%02x, %d sectors at 2048-byte sector %d (%d bytes)",
			b.Platform, map[bool]string{true: "bootable", false: "not bootable"}[b.Bootable], b.Emulation, b.LoadSegment, b.SystemType, b.LoadSectors, b.LoadRBA, b.Size))
	}
	for _, pt := range in.Partitions {
		mark := ""
		if pt.Selected {
			mark = " (opened)"
		}
		desc := pt.TypeName
		if desc == "" {
			desc = pt.Type
		}
		if pt.Name != "" {
			desc += " \"" + pt.Name + "\""
		}
		p(fmt.Sprintf("partition %d", pt.Index), fmt.Sprintf("%s %s, start %d, size %d%s", strings.ToUpper(pt.Table), desc, pt.Start, pt.Size, mark))
	}
	for _, w := range in.Warnings {
		p("warning", w)
	}
	tw.Flush()
}

func newLsCmd(g *globals) *cobra.Command {
	var long, recursive, asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [-l] [-R] [--json] IMAGE [PATH]",
		Short: "List a directory of the image (the root by default)",
		Args:  argsBetween(1, 2, "ls [-l] [-R] [--json] IMAGE [PATH]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			defer g.laterWarnings(f, args[0])
			target := "/"
			if len(args) == 2 {
				target = args[1]
			}
			name, err := mediafs.CleanPath(target)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			l := &lister{g: g, fsys: f, long: long, recursive: recursive, json: asJSON, enc: json.NewEncoder(g.stdout)}
			l.tw = tabwriter.NewWriter(g.stdout, 0, 0, 1, ' ', tabwriter.AlignRight)
			fi, err := statNoFollow(f, name)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if fi.IsDir() {
				l.firstVisit(name, fi)
				l.dir(name)
			} else {
				l.entry(name, fi, true)
			}
			l.tw.Flush()
			if l.failed {
				return errSomeFailed
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "long listing: mode, size, time")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "list subdirectories too")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per entry")
	return cmd
}

func statNoFollow(f mediafs.FS, name string) (fs.FileInfo, error) {
	if l, ok := f.(mediafs.LinkFS); ok {
		return l.Lstat(name)
	}
	return fs.Stat(f, name)
}

type lister struct {
	g                     *globals
	fsys                  mediafs.FS
	long, recursive, json bool
	enc                   *json.Encoder
	tw                    *tabwriter.Writer
	failed                bool
	seen                  map[uint64]string // directories listed, by identity on the medium
}

func (l *lister) dir(name string) {
	ents, err := l.fsys.ReadDir(name)
	if err != nil {
		// A damaged directory still lists the entries of its readable
		// sectors; the warning names it and the sectors.
		if mediafs.IsDirDamage(err) {
			l.g.warn("%v; listing the entries that could be read", err)
		} else {
			l.g.errorf("%v", err)
		}
		l.failed = true
	}
	for _, de := range ents {
		child := de.Name()
		if name != "." {
			child = name + "/" + de.Name()
		}
		fi, err := de.Info()
		if err != nil {
			l.g.errorf("%v", err)
			l.failed = true
			continue
		}
		l.entry(child, fi, l.recursive)
		if l.recursive && fi.IsDir() && l.firstVisit(child, fi) {
			l.dir(child)
		}
	}
}

// firstVisit reports whether the directory has not been listed yet under
// another name (a cross-linked directory on a damaged medium).
func (l *lister) firstVisit(name string, fi fs.FileInfo) bool {
	id, ok := mediafs.DirIdentity(fi)
	if !ok {
		return true
	}
	if l.seen == nil {
		l.seen = map[uint64]string{}
	}
	if prev, dup := l.seen[id]; dup {
		l.g.errorf("%s: same directory as %s (cross-linked); not listed again", mediafs.DisplayPath(name), mediafs.DisplayPath(prev))
		l.failed = true
		return false
	}
	l.seen[id] = name
	return true
}

func (l *lister) entry(name string, fi fs.FileInfo, fullPath bool) {
	e := mediafs.Describe(l.fsys, name, fi)
	if l.json {
		l.enc.Encode(e)
		return
	}
	shown := fi.Name()
	if fullPath {
		shown = e.Path
	}
	if e.Type == "symlink" {
		if l.long {
			shown += " -> " + e.Target
		}
	} else if e.Type == "dir" && !l.long {
		shown += "/"
	}
	if !l.long {
		fmt.Fprintln(l.g.stdout, shown)
		return
	}
	when := "-"
	if t := e.ModTime(); !t.IsZero() {
		when = t.Format("2006-01-02 15:04:05")
	}
	extra := ""
	if e.Attrs != nil {
		extra = *e.Attrs
		if extra == "" {
			extra = "-"
		}
		extra += "\t"
	}
	fmt.Fprintf(l.tw, "%s\t%s%d\t %s\t %s\n", e.Mode, extra, e.Size, when, shown)
}

func newCatCmd(g *globals) *cobra.Command {
	var boot int
	cmd := &cobra.Command{
		Use:   "cat IMAGE PATH | cat --boot N IMAGE",
		Short: "Write a file of the image (or an El Torito boot image) to standard output",
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("boot") {
				return argsBetween(1, 1, "cat --boot N IMAGE")(cmd, args)
			}
			return argsBetween(2, 2, "cat IMAGE PATH")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := g.open(cmd, args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			defer g.laterWarnings(f, args[0])
			if cmd.Flags().Changed("boot") {
				r, size, err := bootImage(f, boot)
				if err != nil {
					return &exitError{code: exitFailed, err: err}
				}
				if _, err := mediafs.CopyReaderAt(g.stdout, r, size, nil, nil); err != nil {
					return &exitError{code: exitFailed, err: fmt.Errorf("boot image %d: %w", boot, err)}
				}
				return nil
			}
			name, err := mediafs.CleanPath(args[1])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			fi, err := fs.Stat(f, name)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if fi.IsDir() {
				return &exitError{code: exitFailed, err: fmt.Errorf("cat %s: is a directory", mediafs.DisplayPath(name))}
			}
			file, err := f.Open(name)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer file.Close()
			if _, err = mediafs.CopyTo(g.stdout, f, file, fi.Size(), nil, nil); err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					return &exitError{code: exitFailed, err: err}
				}
				return &exitError{code: exitFailed, err: fmt.Errorf("cat %s: %w", mediafs.DisplayPath(name), err)}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&boot, "boot", 0, "write El Torito boot image `N` (from 1; see info) instead of a file")
	return cmd
}

// bootImage returns El Torito boot image n (from 1).
func bootImage(f mediafs.FS, n int) (io.ReaderAt, int64, error) {
	b, ok := f.(mediafs.BootFS)
	if !ok {
		return nil, 0, fmt.Errorf("--boot: %s has no El Torito boot catalog", f.Info().FS)
	}
	entries := f.Info().Boot
	if len(entries) == 0 {
		return nil, 0, errors.New("--boot: the image has no El Torito boot catalog")
	}
	if n < 1 || n > len(entries) {
		return nil, 0, fmt.Errorf("--boot %d: the boot catalog has entries 1 to %d", n, len(entries))
	}
	img, err := b.Boot(n - 1)
	if err != nil {
		return nil, 0, err
	}
	return img, img.Size(), nil
}

// copyBufSize is the unit of file copies: large, so that reads reach the
// medium as a few large aligned runs.
const copyBufSize = 1 << 20
