// The filesystem blob store (infra/blob_store): keys, atomic writes, reads, and no way out.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "infra/blob_store.hpp"
#include "support/fake_graph.hpp"

using namespace wachat;

namespace {

std::unique_ptr<infra::blob_writer> writer_for(infra::blob_store& s, const std::string& name, infra::blob_meta meta) {
  auto made = s.create("acme", name, std::move(meta));
  REQUIRE(std::holds_alternative<std::unique_ptr<infra::blob_writer>>(made));
  return std::move(std::get<std::unique_ptr<infra::blob_writer>>(made));
}

std::size_t files_under(const std::filesystem::path& p) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
    n += e.is_regular_file() ? 1 : 0;
  }
  return n;
}

}  // namespace

TEST_CASE("only keys of the store's own shape are valid") {
  CHECK(infra::valid_blob_key("chat/acme/0b5c_invoice.pdf"));
  CHECK_FALSE(infra::valid_blob_key("chat/acme/../../etc/passwd"));
  CHECK_FALSE(infra::valid_blob_key("chat/acme/.meta/x.json"));
  CHECK_FALSE(infra::valid_blob_key("chat/../x"));
  CHECK_FALSE(infra::valid_blob_key("other/acme/x"));
  CHECK_FALSE(infra::valid_blob_key("chat/acme/"));
  CHECK_FALSE(infra::valid_blob_key("chat//x"));
  CHECK_FALSE(infra::valid_blob_key("/chat/acme/x"));
  CHECK_FALSE(infra::valid_blob_key("chat/acme/a\\b"));
  CHECK_FALSE(infra::valid_blob_key(std::string("chat/acme/a\0b", 13)));
  CHECK_FALSE(infra::valid_blob_key("chat/acme/" + std::string(300, 'x')));
}

TEST_CASE("a blob is invisible until committed, then read back with its meta") {
  test::temp_dir dir;
  auto store = infra::make_filesystem_blob_store(dir.path());
  auto w = writer_for(*store, "report.pdf", {"application/pdf", "report.pdf", true});
  const auto key = w->key();
  CHECK(key.rfind("chat/acme/", 0) == 0);
  CHECK(key.substr(key.size() - 11) == "_report.pdf");
  REQUIRE(w->write("hello ", 6));
  REQUIRE(w->write("world", 5));
  CHECK(store->open(key) == nullptr);
  REQUIRE_FALSE(w->commit().has_value());
  auto r = store->open(key);
  REQUIRE(r != nullptr);
  CHECK(r->size() == 11);
  CHECK(r->meta().content_type == "application/pdf");
  CHECK(r->meta().file_name == "report.pdf");
  CHECK(r->meta().attachment);
  char buf[16] = {};
  CHECK(r->read_at(6, buf, sizeof buf) == 5);
  CHECK(std::string(buf, 5) == "world");
  CHECK(r->read_at(11, buf, sizeof buf) == 0);
  store->remove(key);
  CHECK(store->open(key) == nullptr);
}

TEST_CASE("a writer dropped before commit leaves nothing behind") {
  test::temp_dir dir;
  auto store = infra::make_filesystem_blob_store(dir.path());
  {
    auto w = writer_for(*store, "x.jpg", {"image/jpeg", "x.jpg", false});
    REQUIRE(w->write("abc", 3));
  }
  CHECK(files_under(dir.path()) == 0);
}

TEST_CASE("a link planted in the store is not followed") {
  test::temp_dir dir;
  auto store = infra::make_filesystem_blob_store(dir.path());
  std::filesystem::create_directories(dir.path() / "chat" / "acme");
  std::ofstream(dir.path() / "secret.txt") << "secret";
  std::filesystem::create_symlink(dir.path() / "secret.txt", dir.path() / "chat" / "acme" / "link.txt");
  CHECK(store->open("chat/acme/link.txt") == nullptr);
  CHECK(store->open("chat/acme/../secret.txt") == nullptr);
}
