//go:build !smartretry_use_lib && (!cgo || !(linux && amd64))

package smartretry

// The module links the engine's library with cgo, and ships it for linux/amd64 only.
// Elsewhere, or with CGO_ENABLED=0, the build stops here with this one error naming the
// fix (the package's other files need cgo): enable cgo; on another platform, build the
// library and link it with a tag (see README.md).
var _ smartretry_needs_cgo_and_ships_its_library_for_linux_amd64_only__elsewhere_run__cargo_build_release_p_smartretry_uniffi__then_build_with__tags_smartretry_use_lib__and_CGO_LDFLAGS_L_target_release
