package app

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gslb-dev/gslb/internal/config"
)

// NewLogger builds the process logger from the config's log section; a
// non-empty level or format (from flags) overrides the config.
func NewLogger(cfg config.LogConfig, level, format string, w io.Writer) (*zap.Logger, error) {
	if level == "" {
		level = cfg.Level
	}
	if format == "" {
		format = cfg.Format
	}
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

// ErrField is zap.Error, re-exported so cmd/gslb needs no zap import.
func ErrField(err error) zap.Field { return zap.Error(err) }
