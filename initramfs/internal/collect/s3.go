//go:build !nos3

package collect

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/gokdump/gokdump/capture/diskdump"
	"github.com/gokdump/gokdump/internal/config"
	"github.com/gokdump/gokdump/internal/crashdir"
	"github.com/gokdump/gokdump/internal/s3dump"
)

// S3 is whether this capture can write to an s3 target (see s3_off.go).
const S3 = true

// abortTimeout bounds the abort of a failed upload.
const abortTimeout = 30 * time.Second

// captureS3 uploads the dump into an S3 bucket: vmcore-dmesg.txt first,
// meta.json saying "uploading", the vmcore as a multipart upload (aborted
// if it fails), then meta.json with the outcome.
func captureS3(env *Env, cfg *config.Config, t config.Target, src *source, nw *netState) Result {
	start := env.Clock.Now()
	deadline := start.Add(cfg.DeviceTimeout)
	if err := nw.up(env, cfg, deadline); err != nil {
		return Failedf("%v", err)
	}
	// The keys and CAs the image holds; no network yet.
	c, err := s3dump.FromConfig(cfg, nil)
	if err != nil {
		return Failedf("%v", err)
	}
	ctx := context.Background()
	// The capture as a whole is bounded by the supervisor at
	// time_budget; the upload retries until a minute before that, from
	// now, leaving time to abort it and say so in meta.json.
	end := start.Add(max(cfg.TimeBudget-time.Minute, cfg.TimeBudget/2))
	note := func(f string, a ...any) { env.logf("s3: "+f, a...) }

	meta := s3dump.Meta{Version: s3dump.MetaVersion, Host: "unknown", Release: "unknown", CrashTime: src.crashTime.UTC(),
		Codec: string(cfg.Compress), Status: "uploading"}
	if b, err := os.ReadFile(s3dump.MachineIDPath); err == nil {
		meta.MachineID = strings.TrimSpace(string(b))
	}
	if src.f != nil {
		h := diskdump.HeaderFromVmcore(src.f)
		meta.Host, meta.Release = s3dump.HostName(h.Nodename), h.Release
	}
	if meta.Host == "unknown" && meta.MachineID != "" {
		// A machine without a node name is still told apart from others.
		meta.Host = s3dump.HostName("machine-" + meta.MachineID[:min(12, len(meta.MachineID))])
	}
	meta.Panic = s3dump.PanicLine(src.dmesg)

	// The first request tells whether the server is there and takes the
	// keys: until device_timeout for the one, at once for the other.
	env.logf("s3: %s bucket %s as %s", c.Endpoint(), t.Bucket, meta.Host)
	var key string
	for seq := 0; seq <= 99 && key == ""; seq++ {
		k := s3dump.CrashKey(t.Dir, meta.Host, crashdir.Name(src.crashTime, seq))
		var taken bool
		err := s3dump.Retry(ctx, deadline, maxTry, func(n int, err error, wait time.Duration) {
			note("%v; trying again in %v", err, wait)
		}, func(ctx context.Context) error {
			var err error
			taken, err = c.Any(ctx, t.Bucket, k+"/")
			return err
		})
		if err != nil {
			return Failedf("%v", err)
		}
		if !taken {
			key = k
		}
	}
	if key == "" {
		return Failedf("s3: 100 dumps of %s in the same second already", meta.Host)
	}
	url := config.S3Prefix + t.Bucket + "/" + key
	env.logf("s3: saving to %s", url)
	if cfg.Keep > 0 {
		env.logf("keep = %d is not applied on an s3 target: a lifecycle rule of the bucket expires old dumps", cfg.Keep)
	}
	if src.dmesg != nil {
		if err := c.Put(ctx, t.Bucket, key+"/"+s3dump.DmesgObject, src.dmesg, "text/plain; charset=utf-8", end, note); err != nil {
			env.logf("s3: %s: %v", s3dump.DmesgObject, err)
		}
	}
	putMeta := func() {
		meta.Elapsed = env.since(start).Seconds()
		// The last word gets the minute kept back from time_budget.
		d := end
		if last := time.Now().Add(abortTimeout); meta.Status != "uploading" && last.After(d) {
			d = last
		}
		if err := c.Put(ctx, t.Bucket, key+"/"+s3dump.MetaObject, meta.Marshal(), "application/json", d, note); err != nil {
			env.logf("s3: %s: %v", s3dump.MetaObject, err)
		}
	}
	putMeta()

	up, err := c.NewUpload(ctx, t.Bucket, key+"/"+s3dump.VMCoreObject, end, note)
	if err != nil {
		meta.Status, meta.Reason = string(StatusFailed), err.Error()
		putMeta()
		return Failedf("%v", err)
	}
	var res Result
	if src.f == nil {
		// A raw copy is written from the start on: part 1 is its first
		// 5 MiB.
		up.Preallocate(0, 0)
		res = rawCopy(env, cfg, src.path, up, -1, nil)
	} else {
		if cfg.Format != config.FormatKdump {
			env.logf("format %q on an s3 target: written as kdump, the format an upload in parts carries", cfg.Format)
		}
		res = saveDump(env, cfg, src, up, -1, config.FormatKdump, nil)
	}
	meta.DumpLevel = int(res.Level)
	if uerr := up.Err(); uerr != nil || res.Status == StatusFailed {
		// Nothing whole reached the bucket: no object, and the parts
		// sent are dropped.
		if aerr := up.Abort(abortTimeout); aerr != nil {
			env.logf("s3: %v (parts may stay behind until a lifecycle rule removes them)", aerr)
		}
		reason := res.Reason
		if uerr != nil {
			reason = uerr.Error()
		}
		meta.Status, meta.Reason = string(StatusFailed), reason
		putMeta()
		return Failedf("%s: the upload was aborted: %s", url, reason)
	}
	ur, err := up.Finish()
	if err != nil {
		if aerr := up.Abort(abortTimeout); aerr != nil {
			env.logf("s3: %v", aerr)
		}
		meta.Status, meta.Reason = string(StatusFailed), err.Error()
		putMeta()
		return Failedf("%s: the upload was aborted: %v", url, err)
	}
	env.logf("s3: %d bytes in %d parts (part 1: %d bytes, sent last; parts of %d bytes held in memory one at a time); %d tries repeated",
		ur.Size, ur.Parts, ur.HeadSize, ur.PartSize, up.Retries)
	meta.Size, meta.SHA256, meta.HeadSize, meta.PartSize, meta.Parts = ur.Size, ur.SHA256, ur.HeadSize, ur.PartSize, ur.Parts
	meta.Status, meta.Reason, meta.Complete = string(res.Status), res.Reason, res.Status == StatusSaved
	putMeta()
	res.Path, res.Bytes = url+"/"+s3dump.VMCoreObject, ur.Size
	if res.Format == "" {
		res.Format = string(config.FormatKdump)
	}
	return res
}
