# Container images (issue 4): runtime (CPU), runtime-gpu (TensorFlow's CUDA build) and operator, built with podman or
# docker by images/build.sh. Tags are content hashes of what goes into an image, so an unchanged image is not rebuilt;
# each image is also tagged with the tfscore version (localhost/tfscore/runtime:0.1.0 is the operator's default).
# With podman (this machine: no registry), hack/podman-setup.sh provides the debootstrap base image first.
TEST_TIERS += image
UV ?= uv
IMAGE_BUILD := bash images/build.sh

.PHONY: images image-runtime image-runtime-gpu image-operator image-sizes podman-setup test-image locks-gpu

# The GPU image (~7 GB, runs only on a GPU node) is opt-in on shared, GPU-less machines: make images GPU=1.
images: image-runtime image-operator $(if $(GPU),image-runtime-gpu)   ## runtime + operator (+ runtime-gpu with GPU=1)

image-runtime:                 ## the driver/executor image, CPU TensorFlow (target < 2.5 GB)
	$(IMAGE_BUILD) runtime
image-runtime-gpu:             ## the driver/executor image with tensorflow[and-cuda] (builds anywhere; runs on a GPU)
	$(IMAGE_BUILD) runtime-gpu
image-operator:                ## the slim operator image (kopf + kubernetes + pydantic + tfscore; no Spark/TF)
	$(IMAGE_BUILD) operator

image-sizes:                   ## size of every built tfscore image
	@podman images --filter reference='localhost/tfscore/*' --format '{{.Repository}}:{{.Tag}} {{.Size}}' 2>/dev/null \
	  || docker images --filter reference='localhost/tfscore/*' --format '{{.Repository}}:{{.Tag}} {{.Size}}'

podman-setup:                  ## podman, runc, containers.conf and the debootstrap base image (idempotent)
	bash hack/podman-setup.sh

test-image: venv               ## image tier: build the runtime image, doctor, the demo job in a read-only container
	$(PYTEST) tests/image

# The GPU requirements follow the CPU ones: runtime.in with tensorflow[and-cuda] for tensorflow-cpu, the shared pins
# constrained to runtime.lock's versions.
locks-gpu:
	sed -e 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' \
	    -e "1s/.*/# Runtime with TensorFlow's CUDA build (GPU image). Generated from runtime.in by \`make locks-gpu\`: edit runtime.in, not this./" \
	    requirements/runtime.in > requirements/runtime-gpu.in
	cd requirements && $(UV) pip compile -q --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 -c runtime.lock runtime-gpu.in -o runtime-gpu.lock
