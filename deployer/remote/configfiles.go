package remote

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// StageConfig is the stage of a deploy that writes the rendered config
// files into the new revision (Target.ConfigFiles), between checkout and
// promote; promote then links the absolute ones into place.
const StageConfig = "config"

// ConfigFile is one rendered config file of a deploy (Scap3's
// config_deploy): Path is an absolute path, linked at promote to the live
// revision's rendering (<target_dir>-cache/current/.git/config-files/
// <Path>), or a path relative to the revision, written there; Content is
// the rendered text.
type ConfigFile struct {
	Path    string
	Content string
}

// validConfigPath reports whether p is a destination configfiles.sh
// accepts: clean, not the root, without NUL or line breaks, and a
// relative one neither leaving the revision nor inside its .git.
func validConfigPath(p string) bool {
	if p == "" || path.Clean(p) != p || p == "/" || p == "." || strings.ContainsAny(p, "\x00\n\r") {
		return false
	}
	if path.IsAbs(p) {
		return true
	}
	return p != ".." && !strings.HasPrefix(p, "../") && p != ".git" && !strings.HasPrefix(p, ".git/")
}

// validateConfigFiles checks the config files of a Target.
func validateConfigFiles(files []ConfigFile) []error {
	var errs []error
	for _, f := range files {
		if !validConfigPath(f.Path) {
			errs = append(errs, fmt.Errorf("invalid config file path %q: want a clean absolute path, or a clean path inside the revision", clip(f.Path, 200)))
		}
		if strings.IndexByte(f.Content, 0) >= 0 {
			errs = append(errs, fmt.Errorf("config file %s: the rendered text contains a NUL byte", clip(f.Path, 200)))
		}
	}
	return errs
}

// configVars are the prelude variables of configfiles.sh.
func configVars(files []ConfigFile) []shellVar {
	vars := []shellVar{{"DEPLOY_CF_COUNT", strconv.Itoa(len(files))}}
	for i, f := range files {
		n := strconv.Itoa(i + 1)
		vars = append(vars, shellVar{"DEPLOY_CF_PATH_" + n, f.Path}, shellVar{"DEPLOY_CF_BODY_" + n, f.Content})
	}
	return vars
}
