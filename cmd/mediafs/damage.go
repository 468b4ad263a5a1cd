package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
)

func newDamageCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "damage --map MAPFILE [--json] IMAGE",
		Short: "List the files, directories and metadata that a ddrescue map's bad areas hit",
		Long: `damage reads the GNU ddrescue mapfile given with --map and the metadata of
IMAGE (directories, FATs, volume descriptors; never file data), and lists every
file and directory whose data or entries lie in an area the rescue could not
read, with the lost byte ranges, and the metadata those areas hit. The bad
areas are never read: ddrescue left zeros there that must not be taken for
metadata. Entries in a directory's unreadable sectors cannot be named; they
are counted in the directory's line.

Ranges are [offset, length] pairs: offsets in the file or directory, or, for
metadata, byte offsets of the image (as the mapfile counts). The exit status
is 0 whenever the report could be made, damage found or not.`,
		Args: argsBetween(1, 1, "damage --map MAPFILE [--json] IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.mapfile == "" {
				return usageErr("damage needs --map MAPFILE (a GNU ddrescue mapfile of IMAGE)")
			}
			m, err := device.ReadMapfile(g.mapfile)
			if err != nil {
				return usageErr("--map: %v", err)
			}
			f, err := g.open(cmd, args[0])
			if err != nil {
				return explainOpen(err, m, args[0])
			}
			defer f.Close()
			rep, err := mediafs.Damage(f, m)
			if err != nil {
				return &exitError{code: exitNoImage, err: err}
			}
			if !g.quiet {
				for _, w := range rep.Warnings {
					g.warn("%s: %s", args[0], w)
				}
			}
			g.laterWarnings(f, args[0])
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetEscapeHTML(false) // "<FAT 2>", not "\u003cFAT 2\u003e"
				for _, o := range rep.Objects {
					if err := enc.Encode(o); err != nil {
						return &exitError{code: exitFailed, err: err}
					}
				}
			} else {
				printDamage(g, rep)
			}
			if !g.quiet {
				fmt.Fprintf(g.stderr, "mediafs: %s: %s\n", args[0], rep.Summary())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per damaged object")
	return cmd
}

// explainOpen adds to an open failure what the map says about the places
// a file system is recognised by: the boot sector at byte 0 and the ISO
// 9660 volume descriptors from byte 32768.
func explainOpen(err error, m *device.Mapfile, image string) error {
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitNoImage {
		return err
	}
	st, serr := os.Stat(image)
	if serr != nil {
		return err
	}
	var hit []string
	for _, b := range mediafs.BadAreas(m, st.Size()) {
		if b.Off < 512 {
			hit = append(hit, "the boot sector or partition table (byte 0)")
		}
		if b.Off < 34816 && b.End() > 32768 {
			hit = append(hit, "the first ISO 9660 volume descriptor (byte 32768)")
		}
	}
	if len(hit) == 0 {
		return err
	}
	return &exitError{code: exitNoImage, err: fmt.Errorf("%w; the map's bad areas cover %s, so the file system cannot be recognised", ee.err, strings.Join(hit, " and "))}
}

// printDamage prints the report as a table: kind, path, what was lost.
func printDamage(g *globals, rep *mediafs.DamageReport) {
	if len(rep.Objects) == 0 {
		return
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tPATH\tLOST")
	for _, o := range rep.Objects {
		var what string
		switch o.Kind {
		case "metadata":
			what = fmt.Sprintf("%d bytes at image bytes %s", o.LostBytes(), rangeList(o.Ranges))
		case "dir":
			what = "-"
			if n := deref(o.LostSectors); n > 0 {
				what = fmt.Sprintf("%d of %d bytes (%s, up to %s): %s", o.LostBytes(), o.Size, count(n, "sector"), count(deref(o.LostEntries), "entry"), rangeList(o.Ranges))
			}
		default:
			what = fmt.Sprintf("%d of %d bytes: %s", o.LostBytes(), o.Size, rangeList(o.Ranges))
		}
		if o.Note != "" {
			what += " (" + o.Note + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", o.Kind, o.Path, what)
	}
	tw.Flush()
}

// count spells n things: "1 sector", "2 sectors", "3 entries".
func count(n int64, what string) string {
	switch {
	case n == 1:
		return "1 " + what
	case strings.HasSuffix(what, "y"):
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(what, "y"))
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// rangeList spells ranges as "[off, +len) ..." (at most 8; the rest are
// counted).
func rangeList(rs [][2]int64) string {
	if len(rs) == 0 {
		return "-"
	}
	var parts []string
	for i, r := range rs {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("[%d, +%d)", r[0], r[1]))
	}
	return strings.Join(parts, " ")
}
