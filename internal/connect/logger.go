package connect

import (
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogger sends pion's logs to slog at debug level.
type pionLogger struct{ log *slog.Logger }

func (l pionLogger) NewLogger(scope string) logging.LeveledLogger {
	return pionScope{l.log.With("pion", scope)}
}

type pionScope struct{ log *slog.Logger }

func (s pionScope) Trace(string)                      {}
func (s pionScope) Tracef(string, ...any)             {}
func (s pionScope) Debug(msg string)                  { s.log.Debug(msg) }
func (s pionScope) Debugf(format string, args ...any) { s.log.Debug(fmt.Sprintf(format, args...)) }
func (s pionScope) Info(msg string)                   { s.log.Debug(msg) }
func (s pionScope) Infof(format string, args ...any)  { s.log.Debug(fmt.Sprintf(format, args...)) }
func (s pionScope) Warn(msg string)                   { s.log.Debug(msg, "level", "warn") }
func (s pionScope) Warnf(format string, args ...any) {
	s.log.Debug(fmt.Sprintf(format, args...), "level", "warn")
}
func (s pionScope) Error(msg string) { s.log.Debug(msg, "level", "error") }
func (s pionScope) Errorf(format string, args ...any) {
	s.log.Debug(fmt.Sprintf(format, args...), "level", "error")
}
