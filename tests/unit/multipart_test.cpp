// Meta's media upload body (infra/uploads: multipart/form-data).
#include <catch2/catch.hpp>

#include "infra/uploads.hpp"

using namespace wachat;

TEST_CASE("the upload body has the three fields Meta documents, framed by a boundary the file lacks") {
  std::string file = "binary\r\n--not-the-boundary\r\n\x00\x01";
  std::string ct;
  auto body = infra::multipart_upload_body(file, "a.pdf", "application/pdf", ct);
  REQUIRE(ct.rfind("multipart/form-data; boundary=", 0) == 0);
  const auto boundary = ct.substr(30);
  CHECK(file.find(boundary) == std::string::npos);
  CHECK(body.rfind("--" + boundary + "\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n", 0) == 0);
  CHECK(body.find("name=\"type\"\r\n\r\napplication/pdf\r\n") != std::string::npos);
  auto file_head = "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n";
  auto at = body.find(file_head);
  REQUIRE(at != std::string::npos);
  CHECK(body.substr(at + std::string(file_head).size(), file.size()) == file);
  CHECK(body.substr(body.size() - boundary.size() - 8) == "\r\n--" + boundary + "--\r\n");
}
