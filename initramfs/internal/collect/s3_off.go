//go:build nos3

package collect

import "github.com/gokdump/gokdump/internal/config"

// S3 is whether this capture can write to an s3 target: not when built
// with -tags nos3, which leaves out the S3 client (minio-go, net/http,
// TLS: 3.5 MB of the init).
const S3 = false

func captureS3(env *Env, cfg *config.Config, t config.Target, src *source, nw *netState) Result {
	return Failedf("target %s: this capture init was built with -tags nos3, without the S3 client; build it without the tag", t)
}
