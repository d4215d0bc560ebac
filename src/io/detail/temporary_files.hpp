#pragma once
// The temporary files this process writes (AtomicFile's, OutputFiles' staged outputs): named so
// that a later run can tell a stale one (its process is gone) from one being written, and listed
// so that a signal handler can remove them (remove_temporary_files, io/output_files.hpp).

#include <string>

namespace demix::detail {

/// A hidden name for a temporary file beside `target`, in the same folder (rename() stays within
/// one filesystem): "<folder>/.demix-tmp_<host>_<pid>_<n>_<name>", with <name> the target's file
/// name in plain characters (CFITSIO reads brackets and parentheses in names as its extended
/// syntax), so the extension is kept, then `suffix`. The name is listed for
/// remove_temporary_files() until forget_temporary(). Removes stale temporaries of this host in
/// that folder first (once per folder and process).
std::string make_temporary_name(const std::string& target, const std::string& suffix = "");

/// Takes `path` off the list (after it was renamed or removed).
void forget_temporary(const std::string& path);

/// Removes `path` if it exists and takes it off the list.
void discard_temporary(const std::string& path);

/// Removes the files "<folder>/.demix-tmp_<this host>_<pid>_*" whose process no longer runs.
void remove_stale_temporaries(const std::string& folder);

} // namespace demix::detail
