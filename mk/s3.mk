# SeaweedFS S3 test server: scripts and contract in hack/s3/README.md.
# weed builds from the Go module proxy into $(TFSCORE_CACHE)/seaweedfs/<version>/bin; state in $(TFSCORE_CACHE)/s3/state.
S3_SH := hack/s3

.PHONY: s3-build s3 s3-down s3-purge s3-env

s3-build:                      ## build the pinned SeaweedFS weed binary if missing
	bash $(S3_SH)/build.sh
s3:                            ## start SeaweedFS (master+volume+filer+S3) on 127.0.0.1, a free port; prints KEY=value
	bash $(S3_SH)/up.sh --build
s3-down:                       ## stop it (state kept)
	bash $(S3_SH)/down.sh
s3-purge:                      ## stop it and delete its state dir
	bash $(S3_SH)/down.sh --purge
s3-env:                        ## print S3_ENDPOINT=... AWS_ACCESS_KEY_ID=... lines of the running server
	@bash $(S3_SH)/env.sh
