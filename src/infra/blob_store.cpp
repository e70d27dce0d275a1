#include "infra/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

#include "infra/crypto.hpp"

namespace wachat::infra {
namespace {

namespace fs = std::filesystem;

// The extended attribute holding what a blob is served with (JSON, under 4 KiB).
constexpr const char* meta_xattr = "user.wachat.meta";

std::string errno_text(const char* what) { return std::string{what} + ": " + std::strerror(errno); }

// A random (version 4) UUID: names never collide, and are not guessable from one another.
std::string new_uuid() {
  auto h = random_hex(16);
  h[12] = '4';
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
         h.substr(20, 12);
}

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    auto n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool sync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Writes `text` to `path` through a temporary file, synced and renamed.
std::optional<std::string> write_file_atomically(const fs::path& path, const std::string& text) {
  auto tmp = path;
  tmp += ".tmp-" + random_hex(6);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) {
    return errno_text("creating the media's meta file");
  }
  bool ok = write_all(fd, text.data(), text.size()) && ::fsync(fd) == 0;
  auto why = ok ? std::string{} : errno_text("writing the media's meta file");
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    why = errno_text("renaming the media's meta file");
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return why;
  }
  return std::nullopt;
}

class file_writer final : public blob_writer {
 public:
  file_writer(int fd, fs::path dir, fs::path tmp, std::string name, std::string key, blob_meta meta)
      : fd_(fd), dir_(std::move(dir)), tmp_(std::move(tmp)), name_(std::move(name)), key_(std::move(key)),
        meta_(std::move(meta)) {}
  ~file_writer() override {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    if (!committed_) {
      ::unlink(tmp_.c_str());
    }
  }

  bool write(const char* data, std::size_t size) override {
    if (fd_ < 0) {
      return false;
    }
    if (!write_all(fd_, data, size)) {
      error_ = errno_text("writing the media file");
      ::close(fd_);
      fd_ = -1;
      return false;
    }
    return true;
  }

  std::optional<std::string> commit() override {
    if (fd_ < 0) {
      return error_.empty() ? "the media file was not written" : error_;
    }
    // What the blob is served with travels with it as extended attributes, made durable by the
    // same fsync; a filesystem without user attributes gets a meta file beside it instead (two
    // more syncs per file, which showed in the media benchmark).
    const auto meta_text = nlohmann::json{{"content_type", meta_.content_type},
                                          {"file_name", meta_.file_name},
                                          {"attachment", meta_.attachment}}
                               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    const bool in_xattr = ::fsetxattr(fd_, meta_xattr, meta_text.data(), meta_text.size(), 0) == 0;
    if (::fsync(fd_) != 0) {
      error_ = errno_text("syncing the media file");
      return error_;
    }
    ::close(fd_);
    fd_ = -1;
    // A meta file first: a blob is never visible without what it is served with.
    if (!in_xattr) {
      if (auto why = write_file_atomically(dir_ / ".meta" / (name_ + ".json"), meta_text)) {
        error_ = *why;
        return error_;
      }
    }
    if (::rename(tmp_.c_str(), (dir_ / name_).c_str()) != 0) {
      error_ = errno_text("renaming the media file into place");
      ::unlink((dir_ / ".meta" / (name_ + ".json")).c_str());
      return error_;
    }
    committed_ = true;
    if (!sync_directory(dir_) || (!in_xattr && !sync_directory(dir_ / ".meta"))) {
      // Not known to be durable, so not stored: the caller tries again, and must not find a
      // copy of this try left behind.
      error_ = errno_text("syncing the media directory");
      ::unlink((dir_ / name_).c_str());
      ::unlink((dir_ / ".meta" / (name_ + ".json")).c_str());
      return error_;
    }
    return std::nullopt;
  }

  const std::string& error() const override { return error_; }
  const std::string& key() const override { return key_; }

 private:
  int fd_;
  fs::path dir_;
  fs::path tmp_;
  std::string name_;
  std::string key_;
  blob_meta meta_;
  std::string error_;
  bool committed_ = false;
};

class file_reader final : public blob_reader {
 public:
  file_reader(int fd, std::uint64_t size, blob_meta meta) : fd_(fd), size_(size), meta_(std::move(meta)) {}
  ~file_reader() override { ::close(fd_); }
  std::uint64_t size() const override { return size_; }
  const blob_meta& meta() const override { return meta_; }
  std::size_t read_at(std::uint64_t offset, char* buf, std::size_t n) override {
    for (;;) {
      auto got = ::pread(fd_, buf, n, static_cast<off_t>(offset));
      if (got >= 0) {
        return static_cast<std::size_t>(got);
      }
      if (errno != EINTR) {
        throw std::runtime_error(errno_text("reading the media file"));
      }
    }
  }

 private:
  int fd_;
  std::uint64_t size_;
  blob_meta meta_;
};

class filesystem_store final : public blob_store {
 public:
  explicit filesystem_store(fs::path root) : root_(std::move(root)) {}

  std::variant<std::unique_ptr<blob_writer>, std::string> create(std::string_view site, std::string_view file_name,
                                                                 blob_meta meta) override {
    auto name = new_uuid() + "_" + std::string{file_name};
    auto key = "chat/" + std::string{site} + "/" + name;
    if (!valid_blob_key(key)) {
      return std::string{"not a usable media file name"};
    }
    auto dir = root_ / "chat" / std::string{site};
    std::error_code ec;
    fs::create_directories(dir / ".meta", ec);
    if (ec) {
      return "creating the media directory: " + ec.message();
    }
    auto tmp = dir / (".tmp-" + random_hex(8));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
      return errno_text("creating the media file");
    }
    return std::unique_ptr<blob_writer>{
        std::make_unique<file_writer>(fd, std::move(dir), std::move(tmp), std::move(name), std::move(key),
                                      std::move(meta))};
  }

  std::unique_ptr<blob_reader> open(std::string_view key) override {
    if (!valid_blob_key(key)) {
      return nullptr;
    }
    auto path = root_ / fs::path{std::string{key}};
    // O_NOFOLLOW: a link planted in the store cannot lead a signed URL out of it.
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      return nullptr;
    }
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return nullptr;
    }
    blob_meta meta;
    meta.content_type = "application/octet-stream";
    meta.attachment = true;
    std::string text(4096, '\0');
    auto n = ::fgetxattr(fd, meta_xattr, text.data(), text.size());
    if (n < 0) {
      auto meta_path = path.parent_path() / ".meta" / (path.filename().string() + ".json");
      if (int mfd = ::open(meta_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC); mfd >= 0) {
        n = ::read(mfd, text.data(), text.size());
        ::close(mfd);
      }
    }
    {
      auto j = nlohmann::json::parse(text.substr(0, n > 0 ? static_cast<std::size_t>(n) : 0), nullptr, false);
      if (j.is_object() && j["content_type"].is_string() && j["file_name"].is_string() && j["attachment"].is_boolean()) {
        meta.content_type = j["content_type"].get<std::string>();
        meta.file_name = j["file_name"].get<std::string>();
        meta.attachment = j["attachment"].get<bool>();
      }
    }
    return std::make_unique<file_reader>(fd, static_cast<std::uint64_t>(st.st_size), std::move(meta));
  }

  void remove(std::string_view key) override {
    if (!valid_blob_key(key)) {
      return;
    }
    auto path = root_ / fs::path{std::string{key}};
    ::unlink(path.c_str());
    ::unlink((path.parent_path() / ".meta" / (path.filename().string() + ".json")).c_str());
  }

 private:
  fs::path root_;
};

}  // namespace

bool valid_blob_key(std::string_view key) {
  if (key.size() > 512 || key.find('\0') != std::string_view::npos || key.find('\\') != std::string_view::npos) {
    return false;
  }
  int segments = 0;
  std::size_t at = 0;
  while (at <= key.size()) {
    auto end = key.find('/', at);
    auto seg = key.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (seg.empty() || seg.front() == '.' || seg.size() > 255) {
      return false;
    }
    if (segments == 0 && seg != "chat") {
      return false;
    }
    ++segments;
    if (end == std::string_view::npos) {
      break;
    }
    at = end + 1;
  }
  return segments == 3;
}

std::unique_ptr<blob_store> make_filesystem_blob_store(std::filesystem::path root) {
  return std::make_unique<filesystem_store>(std::move(root));
}

}  // namespace wachat::infra
