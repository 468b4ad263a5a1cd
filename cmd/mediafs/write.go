package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mediafs/mediafs"
)

// openWritable opens IMAGE for writing; ISO 9660 images are refused with
// a clear read-only error.
func (g *globals) openWritable(cmd *cobra.Command, image string) (mediafs.WritableFS, error) {
	opts, err := g.openOptions(cmd)
	if err != nil {
		return nil, err
	}
	f, err := mediafs.OpenWritable(image, opts...)
	if err != nil {
		if errors.Is(err, mediafs.ErrReadOnlyFS) {
			return nil, &exitError{code: exitFailed, err: fmt.Errorf("%s: %v; %s changes FAT images only", image, err, cmd.Name())}
		}
		return nil, openErr(fmt.Errorf("%s: %w", image, err))
	}
	if !g.quiet {
		for _, w := range mediafs.OpenWarnings(f) {
			g.warn("%s: %s", image, w)
		}
	}
	return f, nil
}

// closeWritable closes (and so syncs) f; a failure there is a failure of
// the whole command.
func closeWritable(f mediafs.WritableFS, err error) error {
	if cerr := f.Close(); cerr != nil && err == nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("writing the volume back: %w", cerr)}
	}
	return err
}

func failed(err error) error { return &exitError{code: exitFailed, err: err} }

// isDir reports whether name exists in f and is a directory.
func isDir(f mediafs.FS, name string) bool {
	fi, err := fs.Stat(f, name)
	return err == nil && fi.IsDir()
}

func newPutCmd(g *globals) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "put [-r] IMAGE SRC... DEST",
		Short: "Copy host files (with -r, trees) into a FAT image",
		Long: `put copies host files into the image. A DEST that is a directory of the image
receives the sources by name, as cp does; otherwise the single SRC is written
as DEST. Files keep their modification times; existing files are replaced.`,
		Args: argsBetween(3, -1, "put [-r] IMAGE SRC... DEST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcs, destArg := args[1:len(args)-1], args[len(args)-1]
			dest, err := mediafs.CleanPath(destArg)
			if err != nil {
				return failed(err)
			}
			f, err := g.openWritable(cmd, args[0])
			if err != nil {
				return err
			}
			intoDir := isDir(f, dest)
			if !intoDir && len(srcs) > 1 {
				return closeWritable(f, failed(fmt.Errorf("put: %s is not a directory of the image", mediafs.DisplayPath(dest))))
			}
			var jobs []putJob
			for _, src := range srcs {
				target := dest
				if intoDir {
					target = path.Join(dest, filepath.Base(filepath.Clean(src)))
				}
				jobs = append(jobs, putJob{src, target})
			}
			var res error
			if !putAll(g, f, jobs, recursive) {
				res = errSomeFailed
			}
			return closeWritable(f, res)
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy directories and their contents")
	return cmd
}

func newMkdirCmd(g *globals) *cobra.Command {
	var parents bool
	cmd := &cobra.Command{
		Use:   "mkdir [-p] IMAGE PATH",
		Short: "Make a directory in a FAT image",
		Args:  argsBetween(2, 2, "mkdir [-p] IMAGE PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := mediafs.CleanPath(args[1])
			if err != nil || name == "." {
				return failed(fmt.Errorf("mkdir %s: invalid path", args[1]))
			}
			f, err := g.openWritable(cmd, args[0])
			if err != nil {
				return err
			}
			if !parents {
				if err := f.Mkdir(name, 0o755); err != nil {
					return closeWritable(f, failed(err))
				}
				return closeWritable(f, nil)
			}
			elems := strings.Split(name, "/")
			for i := range elems {
				p := strings.Join(elems[:i+1], "/")
				if isDir(f, p) {
					continue
				}
				if err := f.Mkdir(p, 0o755); err != nil {
					return closeWritable(f, failed(err))
				}
			}
			return closeWritable(f, nil)
		},
	}
	cmd.Flags().BoolVarP(&parents, "parents", "p", false, "make parent directories as needed; no error if it exists")
	return cmd
}

func newRmCmd(g *globals) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "rm [-r] IMAGE PATH",
		Short: "Remove a file (with -r, a directory tree) from a FAT image",
		Args:  argsBetween(2, 2, "rm [-r] IMAGE PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := mediafs.CleanPath(args[1])
			if err != nil || name == "." {
				return failed(fmt.Errorf("rm %s: refusing to remove the root", args[1]))
			}
			f, err := g.openWritable(cmd, args[0])
			if err != nil {
				return err
			}
			fi, err := fs.Stat(f, name)
			if err != nil {
				return closeWritable(f, failed(err))
			}
			if fi.IsDir() && !recursive {
				return closeWritable(f, failed(fmt.Errorf("rm %s: is a directory (use -r)", mediafs.DisplayPath(name))))
			}
			if recursive {
				err = f.RemoveAll(name)
			} else {
				err = f.Remove(name)
			}
			if err != nil {
				return closeWritable(f, failed(err))
			}
			return closeWritable(f, nil)
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "remove directories and their contents")
	return cmd
}

func newMvCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "mv IMAGE OLD NEW",
		Short: "Rename or move a file or directory within a FAT image",
		Long: `mv renames OLD to NEW as mv(1) does: a NEW that is an existing directory
receives OLD by name; an existing file NEW is replaced. Case-only renames
(README.TXT to readme.txt) work.`,
		Args: argsBetween(3, 3, "mv IMAGE OLD NEW"),
		RunE: func(cmd *cobra.Command, args []string) error {
			old, err := mediafs.CleanPath(args[1])
			if err != nil || old == "." {
				return failed(fmt.Errorf("mv: cannot move %s", args[1]))
			}
			nw, err := mediafs.CleanPath(args[2])
			if err != nil {
				return failed(err)
			}
			f, err := g.openWritable(cmd, args[0])
			if err != nil {
				return err
			}
			// Into an existing directory, unless it is the same entry
			// spelt in another case (a case-only rename).
			if isDir(f, nw) && !strings.EqualFold(nw, old) {
				nw = path.Join(nw, path.Base(old))
			}
			if err := f.Rename(old, nw); err != nil {
				return closeWritable(f, failed(err))
			}
			return closeWritable(f, nil)
		},
	}
}

func newLabelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "label IMAGE [NEW]",
		Short: "Show or set the volume label of a FAT image (both places Windows keeps it)",
		Args:  argsBetween(1, 2, "label IMAGE [NEW]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				f, err := g.open(cmd, args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				fmt.Fprintln(g.stdout, f.Info().Label)
				return nil
			}
			f, err := g.openWritable(cmd, args[0])
			if err != nil {
				return err
			}
			if err := f.SetLabel(args[1]); err != nil {
				return closeWritable(f, failed(err))
			}
			return closeWritable(f, nil)
		},
	}
}

func newMkfsCmd(g *globals) *cobra.Command {
	var (
		typ, size, cluster, label, serial, table string
		esp                                      bool
	)
	cmd := &cobra.Command{
		Use:   "mkfs --type fat12|fat16|fat32 --size SIZE [--sector-size N] [--cluster-size N] [--label L] [--serial HEX] [--partition-table none|mbr|gpt] IMAGE",
		Short: "Make a new FAT image file",
		Long: `mkfs creates IMAGE (which must not exist) with a new FAT file system, on
512-, 1024-, 2048- or 4096-byte sectors, optionally inside a disk with one
partition (--partition-table mbr or gpt). SIZE takes a K, M, G or T suffix
(powers of 1024). The default cluster size keeps the cluster count inside the
type's range and clear of the edges where readers disagree. The serial is
random unless given. The image is sparse.`,
		Args: argsBetween(1, 1, "mkfs --type fat12|fat16|fat32 --size SIZE [...] IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := mediafs.MkfsOptions{Label: label, PartitionTable: table, SectorSize: g.sectorSize, ESP: esp}
			switch typ {
			case "fat12", "fat16", "fat32":
				o.Type = typ
			case "":
				return usageErr("--type is required: fat12, fat16 or fat32")
			default:
				return usageErr("--type %q: want fat12, fat16 or fat32", typ)
			}
			if size == "" {
				return usageErr("--size is required (e.g. --size 64M)")
			}
			n, err := parseSize(size)
			if err != nil {
				return usageErr("--size: %v", err)
			}
			o.Size = n
			if cluster != "" {
				c, err := parseSize(cluster)
				if err != nil || c <= 0 || c > 1<<20 || c&(c-1) != 0 {
					return usageErr("--cluster-size %q: want a power of two, e.g. 4096 or 32K", cluster)
				}
				o.ClusterSize = int(c)
			}
			if serial != "" {
				v, err := strconv.ParseUint(strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(serial), "0x"), "-", ""), 16, 32)
				if err != nil {
					return usageErr("--serial %q: want 8 hex digits, e.g. 1234-ABCD", serial)
				}
				o.Serial, o.SerialSet = uint32(v), true
			}
			switch table {
			case "", "none", "mbr", "gpt":
			default:
				return usageErr("--partition-table %q: want none, mbr or gpt", table)
			}
			if err := mediafs.Mkfs(args[0], o); err != nil {
				return failed(fmt.Errorf("mkfs %s: %w", args[0], err))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&typ, "type", "", "fat12, fat16 or fat32 (required)")
	fl.StringVar(&size, "size", "", "image size, e.g. 1440K, 64M, 2G")
	fl.StringVar(&cluster, "cluster-size", "", "bytes per cluster, e.g. 4096 or 32K")
	fl.StringVar(&label, "label", "", "volume label (up to 11 characters)")
	fl.StringVar(&serial, "serial", "", "volume serial number in hex, e.g. 1234-ABCD (default random)")
	fl.StringVar(&table, "partition-table", "none", "none, mbr or gpt")
	fl.BoolVar(&esp, "esp", false, "make the partition an EFI system partition (with --partition-table)")
	return cmd
}

// parseSize reads a byte count with an optional K, M, G or T suffix
// (powers of 1024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	if t != "" {
		switch strings.ToUpper(t[len(t)-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (want a byte count with an optional K, M, G or T suffix)", s)
	}
	return v * mult, nil
}
