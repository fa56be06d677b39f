//go:build !(linux && amd64) && !smartretry_use_lib

package smartretry

// The module ships the engine's library for linux/amd64 only. Elsewhere the build stops
// here, naming the fix: build the library yourself and link it with a tag.
var _ = smartretry_ships_a_library_for_linux_amd64_only__build_it_with__cargo_build_release_p_smartretry_uniffi__then_go_build_tags_smartretry_use_lib_with_CGO_LDFLAGS_L_target_release

