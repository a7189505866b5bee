// Test helpers: run a program (curl, h2load, openssl, a test's worker) with its
// output in temporary files, stopped by its process id if it outlives its time.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace kinlet::gateway::testing {

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A temporary directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/kinlet-http-test-XXXXXX";
    path_ = ::mkdtemp(name) != nullptr ? name : "/tmp";
  }
  ~TempDir() {
    if (path_ != "/tmp") std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ProcessResult {
  int exit_code = -1;  // -1: killed (timed out) or not started
  std::string out;
  std::string err;
};

// A child process started with posix_spawn; stdout and stderr go to files.
// `environment` ("NAME=value" entries) replaces this process's environment
// when given.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv,
                   std::optional<std::vector<std::string>> environment = std::nullopt) {
    static int counter = 0;
    const std::string base = dir_.path() + "/p" + std::to_string(counter++);
    out_path_ = base + ".out";
    err_path_ = base + ".err";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    if (environment) {
      for (std::string& v : *environment) envp.push_back(v.data());
      envp.push_back(nullptr);
    }
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(),
                    environment ? envp.data() : environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Process() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Output so far.
  std::string out() const { return ReadWholeFile(out_path_); }
  std::string err() const { return ReadWholeFile(err_path_); }
  // The process id (-1 if it did not start), e.g. to send it a signal.
  pid_t pid() const { return pid_; }
  // Sends `signal` while the process has not been reaped.
  void Signal(int signal) const {
    if (pid_ > 0 && !reaped_) ::kill(pid_, signal);
  }

  // Waits up to `timeout` for the process to exit, then kills it by pid.
  ProcessResult Wait(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    ProcessResult result;
    if (pid_ <= 0) return result;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (!reaped_) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    result.out = ReadWholeFile(out_path_);
    result.err = ReadWholeFile(err_path_);
    return result;
  }

 private:
  TempDir dir_;
  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

inline ProcessResult RunProcess(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  Process p(argv);
  return p.Wait(timeout);
}

}  // namespace kinlet::gateway::testing
