// Package scap reads a Scap3 service's settings from a deploy repository
// tree and maps them onto deploybot's service model (config.Service).
//
// It knows nothing of SSH or IRC, and does not deploy: it reads files
// from an fs.FS (a working copy with os.DirFS, or a revision of the
// deploy repository, see gitrepo's TreeFS) and returns values.
//
// What lives here:
//
//   - Load: scap/scap.cfg (Python configparser's dialect: [global], key =
//     value or key: value, indented continuation lines, # and ;
//     comments), the target lists it names (one host a line, read as
//     Scap3 reads them), scap/checks.yaml, scap/vars.yaml and the config
//     files (scap/config-files.yaml, or the older [config_files] section
//     of scap.cfg) with their templates, each overridden by
//     scap/environments/<env>/ where present, as Scap3 does;
//   - Settings.Apply: the mapping onto a config.Service — canary and
//     groups, batch sizes, failure limits, the restart command Scap3 runs,
//     the port check, checks, submodules, revisions kept — returning every
//     setting it cannot carry over as an Unsupported item (key, file, line,
//     why), never dropping one silently;
//   - Settings.Render and RenderFile: Scap3's config file templates
//     (Jinja2), rendered with github.com/nikolalohinski/gonja/v2 —
//     RenderFile for a deploybot service's config_files, from a revision
//     of the deploy repository.
//
// docs/scap.md lists every Scap3 key with its deploybot field, default
// and support.
//
// # Checks
//
// deploybot runs a service's checks on each host after the restart and
// the port check. Scap3 runs a check after (stage:, after:) or before
// (before:) one of its stages. The checks that run once the new code is
// live are imported: after promote (Scap3 runs these before restarting
// the service; deploybot runs them after it), and before or after
// handle_service (the restart; restart_service is its older name). Checks
// after fetch or config_deploy, which in Scap3 stop a host before its new
// code goes live, and checks of the other stages are reported, as are
// NRPE checks (defined on the targets, not in the repository), checks of
// unknown types and checks limited to one group.
//
// A command check's command line is split the way Scap3 splits it (no
// shell) and quoted for the shell deploybot runs it with, so the same
// program gets the same arguments. A script check runs
// scap/scripts/<name> of the revision. Checks run in the revision's
// directory, with DEPLOY_REV set; those that mention SCAP_ variables, and
// script checks, get SCAP_REV_PATH, SCAP_CURRENT_REV_DIR,
// SCAP_FINAL_PATH, SCAP_REVS_DIR and SCAP_DONE_REV_DIR, from deploybot's
// layout on targets, which is Scap3's.
//
// # Templates
//
// Render gives a template the variables of vars.yaml (the environment's
// over the base ones), then those of the file's remote_vars (read on the
// target by the caller) over them, as Scap3 does. Jinja2's syntax and
// defaults apply (no autoescape, undefined variables print nothing, one
// trailing newline dropped); erb_syntax selects <% %>, <%= %> and <%# %>;
// with YAML output true and false print as true and false. What differs
// from Scap3's Jinja2:
//
//   - include, extends, import and from fail (in Scap3 too, whose loader
//     holds only the one template);
//   - None prints as an empty string (Jinja2 prints None; with YAML output
//     Scap3 prints null);
//   - only gonja's filters, tests and methods exist: most of Jinja2's
//     builtin filters and tests, and the common methods of strings,
//     lists and dicts (items, keys, split, upper…), but no other Python
//     method or attribute, and no extension (do, loopcontrols, i18n
//     blocks);
//   - gonja's formatting of values: lists and dicts print Python-style,
//     as in Jinja2, but floats and big numbers may print differently.
package scap
