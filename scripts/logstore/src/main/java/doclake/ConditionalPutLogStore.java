package doclake;

import io.delta.storage.HadoopFileSystemLogStore;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.util.Iterator;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.s3a.S3AFileSystem;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * A Delta LogStore for S3 (and S3-compatible servers) that is safe with many writers, on many hosts.
 *
 * <p>delta-storage's S3SingleDriverLogStore checks that a commit file does not exist, then writes it:
 * two writers outside one JVM can both pass the check and one commit silently replaces the other.
 * Here a new commit file is one PUT with {@code If-None-Match: *}: the store itself refuses the second
 * writer with 412, which we report as {@link FileAlreadyExistsException}, the signal on which Delta
 * re-reads the log, checks for logical conflicts and retries at the next version. delta-rs (≥ 1.6.1)
 * commits the same way, so both engines can commit to one table at once.
 *
 * <p>The S3 client is the S3AFileSystem's own (its endpoint, region, path style and credentials).
 * Server-side encryption and ACL options of S3A are not applied to commit files.
 */
public class ConditionalPutLogStore extends HadoopFileSystemLogStore {

  // 409 ConditionalRequestConflict: another conditional write of the same key is in flight; AWS
  // asks the client to retry (the retry then gets 412 if the other one won).
  private static final int CONFLICT_ATTEMPTS = 8;

  public ConditionalPutLogStore(Configuration initHadoopConf) {
    super(initHadoopConf);
  }

  @Override
  public void write(Path path, Iterator<String> actions, Boolean overwrite, Configuration hadoopConf)
      throws IOException {
    byte[] body = encode(actions);
    FileSystem fs = path.getFileSystem(hadoopConf);
    if (overwrite) {
      // Only _last_checkpoint is overwritten; an S3A stream becomes visible whole, at close.
      try (FSDataOutputStream out = fs.create(path, true)) {
        out.write(body);
      }
      return;
    }
    if (!(fs instanceof S3AFileSystem)) {
      throw new IOException(
          "ConditionalPutLogStore needs the S3A file system for " + path + ", got " + fs.getClass().getName());
    }
    S3AFileSystem s3a = (S3AFileSystem) fs;
    Path qualified = s3a.makeQualified(path);
    S3Client client = s3a.getS3AInternals().getAmazonS3Client("doclake conditional-put commit");
    PutObjectRequest request =
        PutObjectRequest.builder()
            .bucket(s3a.getBucket())
            .key(s3a.pathToKey(qualified))
            .ifNoneMatch("*")
            .contentType("application/json")
            .build();
    for (int attempt = 1; ; attempt++) {
      try {
        client.putObject(request, RequestBody.fromBytes(body));
        return;
      } catch (S3Exception e) {
        if (e.statusCode() == 412) {
          FileAlreadyExistsException lost = new FileAlreadyExistsException(qualified.toString());
          lost.initCause(e);
          throw lost;
        }
        if (e.statusCode() == 409 && attempt < CONFLICT_ATTEMPTS) {
          pause(attempt);
          continue;
        }
        throw new IOException("commit PUT of " + qualified + " failed: " + e.getMessage(), e);
      }
    }
  }

  @Override
  public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
    return false;
  }

  private static byte[] encode(Iterator<String> actions) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while (actions.hasNext()) {
      out.write((actions.next() + "\n").getBytes(StandardCharsets.UTF_8));
    }
    return out.toByteArray();
  }

  private static void pause(int attempt) throws InterruptedIOException {
    try {
      Thread.sleep(Math.min(2000L, 50L << attempt) + (long) (Math.random() * 50));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while retrying a commit PUT");
    }
  }
}
