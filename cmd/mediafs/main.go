// Command mediafs reads (and, for FAT, writes) images and devices of
// removable media: FAT12/16/32 and ISO 9660 with Joliet, Rock Ridge and El
// Torito. See DESIGN.md for the command contract; `mediafs help` lists the
// verbs.
//
// Exit status (all verbs but fsck): 0 success; 1 some path failed (I/O
// error, corruption, missing path; with --keep-going the rest was done);
// 2 usage; 3 the image could not be opened or understood.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/fat"
)

const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitNoImage = 3
)

// exitError carries an exit status with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func openErr(err error) error { return &exitError{code: exitNoImage, err: err} }

// failedErr reports that some paths failed; their messages were printed.
var errSomeFailed = &exitError{code: exitFailed, err: errors.New("")}

// globals are the options every verb accepts.
type globals struct {
	partition  int
	sectorSize int
	namespace  string
	session    int64
	tz         string
	codepage   int
	quiet      bool
	mapfile    string
	ioTimeout  time.Duration
	retries    int

	stdout, stderr io.Writer
	stopProfile    func()
	warned         int // warnings printed so far
}

// laterWarnings prints the warnings the driver added while the verb ran
// (names it had to neutralise or make unique, damaged entries it skipped).
func (g *globals) laterWarnings(f mediafs.FS, image string) {
	ws := mediafs.Warnings(f)
	if g.quiet || len(ws) <= g.warned {
		return
	}
	for _, w := range ws[g.warned:] {
		g.warn("%s: %s", image, w)
	}
	g.warned = len(ws)
}

// openOptions turns the global options into Open options.
func (g *globals) openOptions(cmd *cobra.Command) ([]mediafs.Option, error) {
	var opts []mediafs.Option
	if g.partition < 0 {
		return nil, usageErr("--partition counts from 1")
	}
	if g.partition > 0 {
		opts = append(opts, mediafs.WithPartition(g.partition))
	}
	if g.sectorSize != 0 {
		switch g.sectorSize {
		case 512, 1024, 2048, 4096:
		default:
			return nil, usageErr("--sector-size %d: want 512, 1024, 2048 or 4096", g.sectorSize)
		}
		opts = append(opts, mediafs.WithSectorSize(g.sectorSize))
	}
	switch g.namespace {
	case "", "rr", "joliet", "iso":
		if g.namespace != "" {
			opts = append(opts, mediafs.WithNamespace(g.namespace))
		}
	default:
		return nil, usageErr("--namespace %q: want rr, joliet or iso", g.namespace)
	}
	if cmd.Flags().Changed("session") {
		if g.session < 0 {
			return nil, usageErr("--session must not be negative")
		}
		opts = append(opts, mediafs.WithSession(g.session))
	}
	if g.tz != "" {
		loc, err := time.LoadLocation(g.tz)
		if err != nil {
			return nil, usageErr("--tz %q: %v", g.tz, err)
		}
		opts = append(opts, mediafs.WithLocation(loc))
	}
	if g.codepage != 0 {
		if !fat.ValidCodePage(g.codepage) {
			return nil, usageErr("--codepage %d: not a code page mediafs knows (437, 850, 852, 855, 858, 860, 862, 863, 865, 866, 874, 1250, 1251, 1252)", g.codepage)
		}
		opts = append(opts, mediafs.WithCodePage(g.codepage))
	}
	if g.mapfile != "" {
		m, err := device.ReadMapfile(g.mapfile)
		if err != nil {
			return nil, usageErr("--map: %v", err)
		}
		opts = append(opts, mediafs.WithMapfile(m))
	}
	if g.retries < 0 {
		return nil, usageErr("--retries must not be negative")
	}
	if g.retries > 0 {
		opts = append(opts, mediafs.WithRetries(g.retries))
	}
	if g.ioTimeout < 0 {
		return nil, usageErr("--io-timeout must not be negative")
	}
	opts = append(opts, mediafs.WithIOTimeout(g.ioTimeout))
	return opts, nil
}

// open opens IMAGE read-only with the global options.
func (g *globals) open(cmd *cobra.Command, image string) (mediafs.FS, error) {
	opts, err := g.openOptions(cmd)
	if err != nil {
		return nil, err
	}
	f, err := mediafs.Open(image, opts...)
	if err != nil {
		return nil, openErr(fmt.Errorf("%s: %w", image, err))
	}
	g.warned = len(mediafs.OpenWarnings(f))
	if !g.quiet && cmd.Name() != "info" { // info prints its warnings itself
		for _, w := range mediafs.OpenWarnings(f) {
			g.warn("%s: %s", image, w)
		}
	}
	return f, nil
}

func (g *globals) warn(format string, a ...any) {
	fmt.Fprintf(g.stderr, "mediafs: warning: "+format+"\n", a...)
}

func (g *globals) errorf(format string, a ...any) {
	fmt.Fprintf(g.stderr, "mediafs: "+format+"\n", a...)
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "mediafs",
		Short: "Read and write FAT and ISO 9660 images of removable media",
		Long: `mediafs reads FAT12/16/32 and ISO 9660 (Joliet, Rock Ridge, El Torito)
images and devices in user space, on any sector size, with errors that name
the sector instead of hangs.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	// A bare "mediafs" prints the help and is a usage error (exit 2);
	// "mediafs --help" still exits 0.
	root.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.Help()
		if len(args) > 0 {
			return usageErr("unknown command %q", args[0])
		}
		return usageErr("a verb is needed")
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: fmt.Errorf("%v (see 'mediafs %s --help')", err, c.Name())}
	})
	pf := root.PersistentFlags()
	pf.IntVar(&g.partition, "partition", 0, "open partition `N` (from 1) of a partitioned disk")
	pf.IntVar(&g.sectorSize, "sector-size", 0, "override the sector size inferred for an image (512, 1024, 2048, 4096)")
	pf.StringVar(&g.namespace, "namespace", "", "ISO 9660 name space: rr, joliet or iso (default: rr, else joliet, else iso)")
	pf.Int64Var(&g.session, "session", 0, "ISO 9660: read the session whose descriptors start at sector `N`+16")
	pf.StringVar(&g.tz, "tz", "", "time `ZONE` FAT times are in (they carry none; default UTC), e.g. Europe/Berlin or Local")
	pf.IntVar(&g.codepage, "codepage", 0, "OEM code `page` of FAT short names (default 437)")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "no progress bar and no warnings")
	pf.StringVar(&g.mapfile, "map", "", "GNU ddrescue `MAPFILE`: every area not marked finished (+) reads as a bad sector")
	pf.DurationVar(&g.ioTimeout, "io-timeout", 30*time.Second, "fail a block-device request that gets no answer in this `time` (0: wait for ever)")
	pf.IntVar(&g.retries, "retries", 0, "try a request that failed with a media error `N` more times")
	// For performance work only: a CPU profile of the whole run.
	var cpuprofile string
	pf.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile to `FILE`")
	pf.MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if cpuprofile == "" {
			return nil
		}
		f, err := os.Create(cpuprofile)
		if err != nil {
			return usageErr("--cpuprofile: %v", err)
		}
		g.stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return pprof.StartCPUProfile(f)
	}
	root.AddCommand(newInfoCmd(g), newLsCmd(g), newCatCmd(g), newExtractCmd(g),
		newPutCmd(g), newMkdirCmd(g), newRmCmd(g), newMvCmd(g), newLabelCmd(g), newMkfsCmd(g))
	root.AddCommand(newMountCmd(g))
	root.AddCommand(newDamageCmd(g))
	return root
}

// argsBetween accepts lo to hi arguments (hi < 0: no upper bound) and
// otherwise fails with the usage line, exit status 2.
func argsBetween(lo, hi int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || (hi >= 0 && len(args) > hi) {
			return usageErr("usage: mediafs %s", usage)
		}
		return nil
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if g.stopProfile != nil {
		g.stopProfile()
	}
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err.Error() != "" {
			fmt.Fprintf(stderr, "mediafs: %v\n", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors (unknown verb, bad arguments) are usage errors.
	fmt.Fprintf(stderr, "mediafs: %v\n", err)
	return exitUsage
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
