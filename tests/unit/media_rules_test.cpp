// The rules of customers' media (domain/media): limits, types, names, byte ranges, retries.
#include <catch2/catch.hpp>

#include <string>

#include "domain/media.hpp"

using namespace wachat::domain;
using namespace std::chrono_literals;

TEST_CASE("size limits follow Meta's per-type limits") {
  CHECK(media_size_limit("image", false) == 5u * 1024 * 1024);
  CHECK(media_size_limit("video", false) == 16u * 1024 * 1024);
  CHECK(media_size_limit("audio", false) == 16u * 1024 * 1024);
  CHECK(media_size_limit("document", false) == 100u * 1024 * 1024);
  CHECK(media_size_limit("sticker", false) == 100u * 1024);
  CHECK(media_size_limit("sticker", true) == 500u * 1024);
  CHECK(media_size_limit("text", false) == 0);
}

TEST_CASE("MIME types are checked per type, parameters and case aside") {
  CHECK(media_mime_accepted("audio", "audio/ogg; codecs=opus"));
  CHECK(media_mime_accepted("audio", "Audio/OGG;codecs=opus"));
  CHECK(media_mime_accepted("image", "image/jpeg"));
  CHECK(media_mime_accepted("image", "image/png"));
  CHECK_FALSE(media_mime_accepted("image", "image/gif"));
  CHECK_FALSE(media_mime_accepted("image", "text/html"));
  CHECK(media_mime_accepted("video", "video/3gpp"));
  CHECK_FALSE(media_mime_accepted("video", "video/x-matroska"));
  CHECK(media_mime_accepted("sticker", "image/webp"));
  CHECK_FALSE(media_mime_accepted("sticker", "image/png"));
  CHECK(media_mime_accepted("document", "application/vnd.ms-excel"));
  CHECK(media_mime_accepted("document", "application/x-anything"));
  CHECK_FALSE(media_mime_accepted("document", "not a type"));
  CHECK_FALSE(media_mime_accepted("document", ""));
  CHECK_FALSE(media_mime_accepted("text", "text/plain"));
  CHECK(mime_essence(" audio/ogg ; codecs=opus") == "audio/ogg");
  // The whole value is served as a Content-Type later: no line breaks or control bytes in it.
  CHECK_FALSE(media_mime_accepted("document", "application/pdf\r\nSet-Cookie: x=1"));
  CHECK_FALSE(media_mime_accepted("audio", "audio/ogg; codecs=\x01opus"));
}

TEST_CASE("extensions come from the MIME type") {
  CHECK(extension_for_mime("image/jpeg") == "jpg");
  CHECK(extension_for_mime("audio/ogg; codecs=opus") == "ogg");
  CHECK(extension_for_mime("audio/mpeg") == "mp3");
  CHECK(extension_for_mime("application/x-unknown") == "bin");
}

TEST_CASE("media without a filename is named <type>_<id>.<extension>") {
  CHECK(media_file_name("", "image", 42, "image/jpeg") == "image_42.jpg");
  CHECK(media_file_name("", "audio", 7, "audio/ogg; codecs=opus") == "audio_7.ogg");
  // Names with nothing left once made safe get the default too.
  CHECK(media_file_name("..", "document", 9, "application/pdf") == "document_9.pdf");
  CHECK(media_file_name("../../", "document", 9, "application/pdf") == "document_9.pdf");
  CHECK(media_file_name("\x01\x02", "document", 9, "application/pdf") == "document_9.pdf");
}

TEST_CASE("a customer's filename is reduced to a safe last component") {
  CHECK(media_file_name("invoice.pdf", "document", 1, "application/pdf") == "invoice.pdf");
  CHECK(media_file_name("../../etc/passwd", "document", 1, "text/plain") == "passwd");
  CHECK(media_file_name("..\\..\\boot.ini", "document", 1, "text/plain") == "boot.ini");
  CHECK(media_file_name(std::string("a\0b.pdf", 7), "document", 1, "application/pdf") == "ab.pdf");
  CHECK(media_file_name(".hidden", "document", 1, "text/plain") == "hidden");
  CHECK(media_file_name("new\nline.txt", "document", 1, "text/plain") == "new_line.txt");
  CHECK(media_file_name("bad\xff\xfe.txt", "document", 1, "text/plain") == "bad__.txt");
  CHECK(media_file_name("Reçu été.pdf", "document", 1, "application/pdf") == "Reçu été.pdf");
}

TEST_CASE("a 2,000-character filename is cut to 120 bytes, keeping its extension and whole characters") {
  std::string long_name(2000, 'x');
  auto n = media_file_name(long_name + ".pdf", "document", 1, "application/pdf");
  CHECK(n.size() == 120);
  CHECK(n.substr(n.size() - 4) == ".pdf");
  std::string accents;
  for (int i = 0; i < 1000; ++i) accents += "é";  // two bytes each
  auto a = media_file_name(accents + ".docx", "document", 1, "application/msword");
  CHECK(a.size() <= 120);
  CHECK(a.substr(a.size() - 5) == ".docx");
  // Cut on a character boundary: every é is whole.
  auto stem = a.substr(0, a.size() - 5);
  CHECK(stem.size() % 2 == 0);
  for (std::size_t i = 0; i < stem.size(); i += 2) CHECK(stem.substr(i, 2) == "é");
}

TEST_CASE("byte ranges: one range served, past-the-end unsatisfiable, anything odd gets the whole file") {
  using K = byte_range_answer::kind;
  auto r = read_byte_range("bytes=0-99", 1000);
  CHECK(r.what == K::partial);
  CHECK(r.first == 0);
  CHECK(r.last == 99);
  r = read_byte_range("bytes=900-", 1000);
  CHECK((r.what == K::partial && r.first == 900 && r.last == 999));
  r = read_byte_range("bytes=-100", 1000);
  CHECK((r.what == K::partial && r.first == 900 && r.last == 999));
  r = read_byte_range("bytes=-5000", 1000);
  CHECK((r.what == K::partial && r.first == 0 && r.last == 999));
  r = read_byte_range("bytes=10-5000", 1000);
  CHECK((r.what == K::partial && r.first == 10 && r.last == 999));
  CHECK(read_byte_range("bytes=1000-", 1000).what == K::unsatisfiable);
  CHECK(read_byte_range("bytes=5000-6000", 1000).what == K::unsatisfiable);
  CHECK(read_byte_range("bytes=-0", 1000).what == K::unsatisfiable);
  CHECK(read_byte_range("bytes=0-", 0).what == K::unsatisfiable);
  CHECK(read_byte_range("bytes=5-1", 1000).what == K::whole);
  CHECK(read_byte_range("bytes=a-b", 1000).what == K::whole);
  CHECK(read_byte_range("bytes=0-1,5-6", 1000).what == K::whole);
  CHECK(read_byte_range("items=0-1", 1000).what == K::whole);
  CHECK(read_byte_range("bytes=99999999999999999999999-", 1000).what == K::whole);
}

TEST_CASE("a failed media try is tried again with doubling waits, five tries in all") {
  CHECK(job_retry_delay(1, 2000ms) == 2000ms);
  CHECK(job_retry_delay(2, 2000ms) == 4000ms);
  CHECK(job_retry_delay(4, 2000ms) == 16000ms);
  CHECK(job_retry_delay(40, 2000ms) == std::chrono::minutes(5));
  auto d = decide_job_retry(false, 1, 100ms);
  CHECK_FALSE(d.give_up);
  CHECK(d.delay == 100ms);
  CHECK(decide_job_retry(false, job_max_attempts, 100ms).give_up);
  CHECK(decide_job_retry(true, 1, 100ms).give_up);
}

TEST_CASE("a media lookup fails for good only when Meta says the media is gone or the request is wrong") {
  graph_error unknown;
  unknown.code = 100;
  unknown.subcode = 33;
  unknown.http_status = 400;
  CHECK(media_lookup_failed_for_good(unknown));
  graph_error not_found;
  not_found.http_status = 404;
  CHECK(media_lookup_failed_for_good(not_found));
  graph_error token;
  token.code = 190;
  token.http_status = 401;
  CHECK_FALSE(media_lookup_failed_for_good(token));
  graph_error outage;
  outage.http_status = 503;
  CHECK_FALSE(media_lookup_failed_for_good(outage));
  graph_error transport;
  transport.transport = true;
  CHECK_FALSE(media_lookup_failed_for_good(transport));
}

TEST_CASE("Meta's sha256 is matched as hex (any case) or base64 (padded or not)") {
  const std::string hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  const std::string b64 = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
  CHECK(sha256_names(hex, hex, b64));
  CHECK(sha256_names("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", hex, b64));
  CHECK(sha256_names(b64, hex, b64));
  CHECK(sha256_names("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg", hex, b64));
  CHECK_FALSE(sha256_names("0000", hex, b64));
  CHECK_FALSE(sha256_names("", hex, b64));
}

TEST_CASE("a media signature covers the key and the expiry") {
  CHECK(media_signature_payload("chat/acme/x.jpg", 100) != media_signature_payload("chat/acme/x.jpg", 101));
  CHECK(media_signature_payload("chat/acme/x.jpg", 100) != media_signature_payload("chat/acme/y.jpg", 100));
}
