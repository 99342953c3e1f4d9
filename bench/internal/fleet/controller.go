package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// controllerProcess is the controller binary running as a child process,
// with its memory and CPU time sampled from /proc.
type controllerProcess struct {
	cmd         *exec.Cmd
	log         *os.File
	metricsAddr string
	// pprofAddr is the controller's pprof endpoint; empty when off.
	pprofAddr string
	started   time.Time
	done      chan struct{}
	exitErr   error

	mu      sync.Mutex
	peakRSS int64 // since the last resetPeak
	// peakAnon and peakFile are the highest sampled RssAnon and RssFile
	// since the process started.
	peakAnon, peakFile int64
	last               procUsage
}

// sampleEvery is how often RSS is read: often enough to catch the peak of a
// rollout lasting seconds.
const sampleEvery = 100 * time.Millisecond

// startController starts bin with args, and env added to the benchmark's
// environment.
func startController(bin string, args, env []string, logPath string) (*controllerProcess, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create controller log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = log, log
	setProcessGroup(cmd)
	p := &controllerProcess{cmd: cmd, log: log, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start controller %s: %w", bin, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()
	go p.sample()
	return p, nil
}

func (p *controllerProcess) sample() {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		if u, err := readProcUsage(p.cmd.Process.Pid); err == nil {
			p.mu.Lock()
			p.record(u)
			p.mu.Unlock()
		}
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

// usage returns the latest sample and the peak RSS since the last
// resetPeak, after taking a fresh sample.
func (p *controllerProcess) usage() (procUsage, int64) {
	u, err := readProcUsage(p.cmd.Process.Pid)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.record(u)
	}
	return p.last, p.peakRSS
}

// record keeps a sample; the caller holds mu.
func (p *controllerProcess) record(u procUsage) {
	p.last = u
	p.peakRSS = max(p.peakRSS, u.RSS)
	p.peakAnon, p.peakFile = max(p.peakAnon, u.Anon), max(p.peakFile, u.File)
}

// peaks returns the highest sampled RssAnon and RssFile since the start.
func (p *controllerProcess) peaks() (anon, file int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakAnon, p.peakFile
}

// binaryPages splits the binary's resident pages by section; nil, and
// logged, when they cannot be read.
func (p *controllerProcess) binaryPages(logf func(string, ...any)) []SectionPages {
	sections, err := residentSections(p.cmd.Process.Pid, p.cmd.Path)
	if err != nil {
		logf("the binary's resident pages: %v", err)
	}
	return sections
}

func (p *controllerProcess) resetPeak() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peakRSS = 0
}

// guard returns a context that ends when ctx does or when the controller
// exits, so that no wait outlives a crashed controller.
func (p *controllerProcess) guard(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-p.done:
			err := p.exitErr
			if err == nil {
				err = errors.New("exit status 0")
			}
			cancel(fmt.Errorf("controller exited: %w (log: %s)", err, p.log.Name()))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// stop asks the controller's process group to stop, and kills it after
// the grace period. It is safe to call more than once.
func (p *controllerProcess) stop(grace time.Duration) error {
	defer p.log.Close()
	pid := p.cmd.Process.Pid
	var errs []error
	select {
	case <-p.done:
	default:
		if err := signalGroup(pid, syscall.SIGTERM); err != nil {
			errs = append(errs, fmt.Errorf("stop controller: %w", err))
		}
		select {
		case <-p.done:
		case <-time.After(grace):
			if err := signalGroup(pid, syscall.SIGKILL); err != nil {
				errs = append(errs, fmt.Errorf("kill controller: %w", err))
			}
			<-p.done
		}
	}
	// The controller is the group's leader; anything it left behind in the
	// group goes too.
	if err := signalGroup(pid, syscall.SIGKILL); err != nil {
		errs = append(errs, fmt.Errorf("kill controller's process group: %w", err))
	}
	return errors.Join(errs...)
}
