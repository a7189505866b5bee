// Test helper: a dynalite (npm dynalite, a DynamoDB no one here wrote) on
// 127.0.0.1, started on a port the kernel picks and stopped by its process id.
//
// dynalite is looked for in $KINLET_DYNALITE_DIR, then in the build tree's
// npm install (tests/clients/npm/node_modules, as the client tests' harness
// makes it), which is made with the harness's `npm ci` when missing. When node
// or dynalite cannot be had, StartDynalite WARNs "dynalite not available: ..."
// and returns nullptr (the test returns: Catch2 v2 has no SKIP); with
// KINLET_REQUIRE_NODE_SERVERS=1 (scripts/run-tests.sh sets it) it fails.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace kinlet_test {

// A dynalite process on 127.0.0.1, stopped (SIGTERM, then SIGKILL) by pid in
// the destructor. Its stdin is a pipe from this process: if the test process
// dies, the pipe closes and dynalite exits by itself.
class Dynalite {
 public:
  // Starts one; `error` says why not when it returns nullptr.
  static std::unique_ptr<Dynalite> Start(int create_table_ms, std::string* error) {
    const std::string node = FindNode();
    if (node.empty()) {
      *error = "node not found (/usr/bin/node, /usr/local/bin/node)";
      return nullptr;
    }
    const std::string module = FindDynalite(error);
    if (module.empty()) return nullptr;
    const std::string script =
        absl::StrCat("const dynalite = require(", Quote(module), ");",
                     "const server = dynalite({createTableMs: ", create_table_ms,
                     ", deleteTableMs: 0, updateTableMs: 0});",
                     "server.listen(0, '127.0.0.1', () => process.stdout.write('PORT ' + "
                     "server.address().port + '\\n'));",
                     "process.stdin.on('end', () => process.exit(0)); process.stdin.resume();",
                     "process.on('SIGTERM', () => process.exit(0));");
    int out[2], in[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
      *error = "pipe failed";
      return nullptr;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<std::string> args = {node, "-e", script};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, node.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) {
      ::close(in[1]);
      ::close(out[0]);
      *error = absl::StrCat("cannot run ", node);
      return nullptr;
    }
    std::unique_ptr<Dynalite> d(new Dynalite(pid, in[1]));
    // Read "PORT <n>\n" (up to 60 s: sanitizer builds, a loaded machine).
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (line.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out[0], POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buffer[256];
      const ssize_t n = ::read(out[0], buffer, sizeof buffer);
      if (n <= 0) break;
      line.append(buffer, static_cast<size_t>(n));
    }
    ::close(out[0]);
    if (line.rfind("PORT ", 0) != 0) {
      *error = absl::StrCat("dynalite did not start (printed '", line, "')");
      return nullptr;
    }
    d->endpoint_ = absl::StrCat("http://127.0.0.1:", std::atoi(line.c_str() + 5));
    return d;
  }

  ~Dynalite() {
    ::close(stdin_);
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  const std::string& endpoint() const { return endpoint_; }

 private:
  Dynalite(pid_t pid, int stdin_fd) : pid_(pid), stdin_(stdin_fd) {}

  static std::string Quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  }

  static std::string FindNode() {
    for (const char* path : {"/usr/bin/node", "/usr/local/bin/node"}) {
      if (::access(path, X_OK) == 0) return path;
    }
    return "";
  }

  // The dynalite package directory, installing the pinned npm packages into
  // the build tree (the client tests' harness, under a lock) when missing.
  static std::string FindDynalite(std::string* error) {
    if (const char* dir = std::getenv("KINLET_DYNALITE_DIR"); dir != nullptr && *dir != '\0') {
      if (std::filesystem::exists(std::filesystem::path(dir) / "package.json")) return dir;
      *error = absl::StrCat("KINLET_DYNALITE_DIR=", dir, " holds no package.json");
      return "";
    }
    static std::mutex mu;
    std::lock_guard<std::mutex> lock(mu);
    const std::string npm_dir = std::string(KINLET_BINARY_DIR) + "/tests/clients/npm";
    const std::string module = npm_dir + "/node_modules/dynalite";
    const std::string stamp = npm_dir + "/node_modules/.kinlet-lock-sha256";
    std::filesystem::create_directories(npm_dir);
    // Other test processes (ctest -j) may install at the same time: one lock.
    const int lock_fd = ::open((npm_dir + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock_fd >= 0) ::flock(lock_fd, LOCK_EX);
    // ensure_node_modules does nothing when the install matches the lock file.
    const std::string command =
        absl::StrCat("/usr/bin/python3 -c \"import sys; sys.path.insert(0, '", KINLET_SOURCE_DIR,
                     "/tests/clients'); import harness; harness.ensure_node_modules('", npm_dir,
                     "')\" >/dev/null 2>&1");
    const bool fresh = std::filesystem::exists(stamp) && std::filesystem::exists(module);
    if (!fresh) (void)std::system(command.c_str());  // checked below by looking
    if (lock_fd >= 0) ::close(lock_fd);
    if (!std::filesystem::exists(module + "/package.json")) {
      *error = absl::StrCat("no ", module, " (npm ci of tests/clients/package-lock.json failed: ",
                            "offline? run it there, or set KINLET_DYNALITE_DIR)");
      return "";
    }
    return module;
  }

  pid_t pid_;
  int stdin_;
  std::string endpoint_;
};

// Starts dynalite or says why not: WARN and nullptr (the test returns), or a
// failure under KINLET_REQUIRE_NODE_SERVERS=1.
inline std::unique_ptr<Dynalite> StartDynalite(int create_table_ms = 0) {
  std::string error;
  std::unique_ptr<Dynalite> d = Dynalite::Start(create_table_ms, &error);
  if (d == nullptr) {
    const char* require = std::getenv("KINLET_REQUIRE_NODE_SERVERS");
    if (require != nullptr && std::string(require) == "1")
      FAIL("dynalite not available: " << error);
    WARN("dynalite not available: " << error << " -- test skipped");
  }
  return d;
}

}  // namespace kinlet_test
