// Package gitrepo is the deploy repository on the deployment host: the
// working copy of a service's code at deploy_dir/<repo>, kept up to date
// from its upstream with go-git, and served read-only to the targets.
//
// What lives here:
//
//   - updating the deploy repository: [Open] clones it when it is missing,
//     [Repo.Update] fetches the upstream branch, hard-resets the working copy
//     to it and brings every submodule (recursively) to the commit recorded
//     by the superproject;
//   - resolving the revision to deploy: [Repo.Resolve] turns "" (the new
//     HEAD) or a sha1 of 7 to 40 hex digits into exactly one commit, with
//     operator-friendly errors ([RevisionError]); [ValidateRev] is the same
//     syntax check for callers that want to refuse a command early;
//   - history: [Repo.Range] lists the commits between the deployed revision
//     and the new one (or the commits a rollback takes away);
//   - read-only serving: [Repo.UpdateServerInfo] writes the files the git
//     "dumb HTTP" protocol needs (go-git plumbing/serverinfo, the equivalent
//     of git update-server-info) for the repository and every submodule git
//     directory, and [Handler] serves deploy_dir over plain HTTP, read-only,
//     exposing git directories only.
//
// What does not live here: SSH, the targets and what runs on them, IRC, locks
// and the journal. The targets are driven by the deployment engine; this
// package only documents (and tests) the git commands a target runs to fetch
// from the deployment host, and provides [SubmoduleURL] and
// [SubmoduleCommands] to build them.
//
// # No git binary on the deployment host
//
// Everything is done with go-git; nothing here runs the git command. go-git's
// own transport for local upstreams (a plain path or a file:// URL) runs
// git-upload-pack, so importing this package replaces the "file" transport of
// go-git, process-wide, with go-git's in-process server (see transport.go).
// http(s), ssh and git:// upstreams use go-git's usual clients.
//
// # Layout on the deployment host
//
//	deploy_dir/<repo>/                      working copy (never served)
//	deploy_dir/<repo>/.git/                 the repository (served)
//	deploy_dir/<repo>/.git/modules/<name>/  a submodule's git dir (served)
//	deploy_dir/<repo>/.git/modules/<name>/modules/<name2>/
//	                                        a submodule of that submodule
//
// This is the layout git itself uses, so a `git` run by hand on the
// deployment host (git log, git submodule status) understands the working
// copy. The deploy repository is never edited by hand: [Repo.Update]
// discards local changes to tracked files (hard reset) and moves HEAD of
// every submodule to the recorded commit (detached, as git does).
//
// # How a target fetches
//
// The repository is served by [Handler] mounted at the root of the
// deploy.serve listener, with root = deploy_dir, so that
// <serve_url>/<repo>/.git is the repository and
// <serve_url>/<repo>/.git/modules/<name> each submodule. Targets run the
// real git CLI over plain HTTP (git's dumb protocol: it downloads info/refs,
// HEAD, loose objects and packs as static files). To deploy revision <sha>
// into a directory DIR (a fresh clone or a cache reused across deploys):
//
//	# first time
//	git clone --no-checkout <serve_url>/<repo>/.git DIR
//	# later deploys
//	git -C DIR fetch --prune origin
//	# both; fetching the sha itself also works over dumb HTTP, for a
//	# revision no longer reachable from a branch
//	git -C DIR cat-file -e <sha>^{commit} || git -C DIR fetch origin <sha>
//	git -C DIR -c advice.detachedHead=false checkout --force --detach <sha>
//
// then, when the service has submodules ([Repo.SubmodulesAt] for <sha>), the
// commands [SubmoduleCommands] returns, run in DIR, level by level. For a
// repository with submodule "lib" at path lib, which itself has a
// submodule "inner" at path deps/inner:
//
//	git config submodule.lib.url <serve_url>/<repo>/.git/modules/lib
//	git -c protocol.file.allow=never submodule update --init --checkout --force -- lib
//	git -C lib config submodule.inner.url <serve_url>/<repo>/.git/modules/lib/modules/inner
//	git -C lib -c protocol.file.allow=never submodule update --init --checkout --force -- deps/inner
//
// Setting submodule.<name>.url before `submodule update --init` makes git
// keep that URL instead of the one in .gitmodules (which points to the
// upstream the targets must not use); updating level by level, instead of
// with --recursive, lets each nested level be pointed at the deployment
// host before it is cloned. git clones each submodule from the served
// module git dir and checks out the recorded commit, fetching it by sha if
// no served ref contains it. --checkout ignores any update mode set in
// .gitmodules, --force discards local changes in the target's submodules.
// If serve_url ever changes, a target's existing submodule clones keep the
// old origin URL: remove the cache, or run
// `git -C <path> remote set-url origin <url>` for each.
package gitrepo
