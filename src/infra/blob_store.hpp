#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

// Where customers' media files are kept (API.md §3.6): keys `chat/{site}/{uuid}_{filename}`.
// An interface, so that an object store (S3-compatible) can stand in for the filesystem once
// several machines serve /media (DESIGN.md §5): the rest of wachat sees only keys.
namespace wachat::infra {

// What a blob is served with.
struct blob_meta {
  std::string content_type;
  std::string file_name;
  bool attachment = false;  // documents: downloaded, never shown inline
};

// One blob being written. Nothing is visible under its key until commit() succeeds; a writer
// dropped before that leaves nothing behind.
class blob_writer {
 public:
  virtual ~blob_writer() = default;
  // False on a failed write (disk full, quota): error() says why; the writer is then useless.
  virtual bool write(const char* data, std::size_t size) = 0;
  // Makes the blob durable and visible under its key; nullopt on success, else why not.
  virtual std::optional<std::string> commit() = 0;
  virtual const std::string& error() const = 0;
  virtual const std::string& key() const = 0;
};

// A stored blob opened for reading.
class blob_reader {
 public:
  virtual ~blob_reader() = default;
  virtual std::uint64_t size() const = 0;
  virtual const blob_meta& meta() const = 0;
  // Reads up to `n` bytes at `offset`; 0 at the end. Throws on an I/O error.
  virtual std::size_t read_at(std::uint64_t offset, char* buf, std::size_t n) = 0;
};

class blob_store {
 public:
  virtual ~blob_store() = default;
  // A writer for a new blob of `site` named `file_name` (already made safe by
  // domain::media_file_name), or why none can be made.
  virtual std::variant<std::unique_ptr<blob_writer>, std::string> create(std::string_view site,
                                                                         std::string_view file_name,
                                                                         blob_meta meta) = 0;
  // nullptr when `key` names no stored blob, or is no key this store could have made.
  virtual std::unique_ptr<blob_reader> open(std::string_view key) = 0;
  virtual void remove(std::string_view key) = 0;
};

// Whether `key` has the shape of a key a store makes: `chat/{site}/{name}`, no empty, `.`- or
// `..`-led segment, no NUL or backslash. Nothing else is ever looked up.
bool valid_blob_key(std::string_view key);

// Files under `root`: each blob written to a temporary name, synced, renamed into place, and
// the directory synced; its meta in the file's `user.wachat.meta` extended attribute, or, on a
// filesystem without user attributes, beside it in `chat/{site}/.meta/{name}.json`.
std::unique_ptr<blob_store> make_filesystem_blob_store(std::filesystem::path root);

}  // namespace wachat::infra
