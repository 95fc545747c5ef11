/*
 * test-config.c: parsing of every MPTCPSHIM_ variable, good and bad
 * values, and the one stderr line a bad value earns.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"

#include <arpa/inet.h>

typedef int (*parser_fn)(struct mps_config *cfg, const char *value);

static char said[4096]; /* what the last parse wrote on stderr */

/* Run fn(cfg, value) with stderr captured into said; returns fn's result. */
static int
parse_capturing(parser_fn fn, struct mps_config *cfg, const char *value)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;
	int ret;

	ck_assert_ptr_nonnull(tmp);
	ck_assert_int_ge(saved, 0);
	dup2(fileno(tmp), STDERR_FILENO);
	ret = fn(cfg, value);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(said, 1, sizeof(said) - 1, tmp);
	said[n] = '\0';
	fclose(tmp);
	return ret;
}

/* Parse value into a fresh configuration and expect silence. */
static struct mps_config parse_ok(parser_fn fn, const char *value)
{
	struct mps_config cfg;

	mps_config_defaults(&cfg);
	ck_assert_int_eq(parse_capturing(fn, &cfg, value), 0);
	ck_assert_msg(said[0] == '\0', "unexpected stderr: %s", said);
	return cfg;
}

/* Parse a bad value; expect exactly one line naming it. */
static struct mps_config
parse_bad(parser_fn fn, const char *name, const char *value)
{
	struct mps_config cfg;
	char quoted[512];

	mps_config_defaults(&cfg);
	ck_assert_int_eq(parse_capturing(fn, &cfg, value), -EINVAL);
	snprintf(quoted, sizeof(quoted), "%s=\"%s\"", name, value);
	ck_assert_msg(strncmp(said, "mptcpshim: ", 11) == 0, "got: %s", said);
	ck_assert_msg(strstr(said, quoted) != NULL, "got: %s", said);
	ck_assert_msg(strstr(said, "; using ") != NULL, "got: %s", said);
	ck_assert_msg(strchr(said, '\n') == said + strlen(said) - 1,
		      "not one line: %s",
		      said);
	return cfg;
}

START_TEST(test_defaults_are_documented_values)
{
	struct mps_config cfg;

	mps_config_defaults(&cfg);
	ck_assert(!cfg.disable);
	ck_assert_int_eq(cfg.convert, MPS_CONVERT_ALL);
	ck_assert_int_eq(cfg.version, 1);
	ck_assert(!cfg.checksum);
	ck_assert_int_eq(cfg.log_level, MPS_LOG_NONE);
	ck_assert_str_eq(cfg.log_file, "");
	ck_assert_uint_eq(cfg.rcvbuf, 4u << 20);
	ck_assert_uint_eq(cfg.sndbuf, 4u << 20);
}
END_TEST

START_TEST(test_unset_variables_keep_defaults_silently)
{
	ck_assert(!parse_ok(mps_config_disable, NULL).disable);
	ck_assert_int_eq(parse_ok(mps_config_convert, NULL).convert,
			 MPS_CONVERT_ALL);
	ck_assert_int_eq(parse_ok(mps_config_version, NULL).version, 1);
	ck_assert(!parse_ok(mps_config_checksum, NULL).checksum);
	ck_assert_int_eq(parse_ok(mps_config_log_level, NULL).log_level,
			 MPS_LOG_NONE);
	ck_assert_str_eq(parse_ok(mps_config_log_file, NULL).log_file, "");
	ck_assert_uint_eq(parse_ok(mps_config_rcvbuf, NULL).rcvbuf, 4u << 20);
	ck_assert_uint_eq(parse_ok(mps_config_sndbuf, NULL).sndbuf, 4u << 20);
}
END_TEST

START_TEST(test_disable_takes_0_and_1)
{
	ck_assert(parse_ok(mps_config_disable, "1").disable);
	ck_assert(!parse_ok(mps_config_disable, "0").disable);
}
END_TEST

START_TEST(test_disable_bad_value_keeps_library_active)
{
	ck_assert(!parse_bad(mps_config_disable, "MPTCPSHIM_DISABLE", "yes")
			   .disable);
	ck_assert(!parse_bad(mps_config_disable, "MPTCPSHIM_DISABLE", "")
			   .disable);
}
END_TEST

START_TEST(test_version_takes_0_and_1)
{
	ck_assert_int_eq(parse_ok(mps_config_version, "0").version, 0);
	ck_assert_int_eq(parse_ok(mps_config_version, "1").version, 1);
}
END_TEST

START_TEST(test_version_bad_value_uses_1)
{
	ck_assert_int_eq(
		parse_bad(mps_config_version, "MPTCPSHIM_VERSION", "2").version,
		1);
	ck_assert_int_eq(
		parse_bad(mps_config_version, "MPTCPSHIM_VERSION", "01")
			.version,
		1);
}
END_TEST

START_TEST(test_checksum_takes_0_and_1)
{
	ck_assert(parse_ok(mps_config_checksum, "1").checksum);
	ck_assert(!parse_ok(mps_config_checksum, "0").checksum);
}
END_TEST

START_TEST(test_checksum_bad_value_uses_0)
{
	ck_assert(!parse_bad(mps_config_checksum, "MPTCPSHIM_CHECKSUM", "on")
			   .checksum);
}
END_TEST

START_TEST(test_control_defaults_to_on_and_takes_0)
{
	ck_assert(parse_ok(mps_config_control, NULL).control);
	ck_assert(parse_ok(mps_config_control, "1").control);
	ck_assert(!parse_ok(mps_config_control, "0").control);
}
END_TEST

START_TEST(test_control_bad_value_uses_1)
{
	ck_assert(parse_bad(mps_config_control, "MPTCPSHIM_CONTROL", "off")
			  .control);
}
END_TEST

START_TEST(test_direct_send_defaults_to_on_and_takes_0)
{
	ck_assert(parse_ok(mps_config_direct_send, NULL).direct_send);
	ck_assert(!parse_ok(mps_config_direct_send, "0").direct_send);
	ck_assert(parse_bad(mps_config_direct_send,
			    "MPTCPSHIM_DIRECT_SEND",
			    "yes")
			  .direct_send);
}
END_TEST

START_TEST(test_log_level_takes_every_name)
{
	ck_assert_int_eq(parse_ok(mps_config_log_level, "none").log_level,
			 MPS_LOG_NONE);
	ck_assert_int_eq(parse_ok(mps_config_log_level, "error").log_level,
			 MPS_LOG_ERROR);
	ck_assert_int_eq(parse_ok(mps_config_log_level, "warn").log_level,
			 MPS_LOG_WARN);
	ck_assert_int_eq(parse_ok(mps_config_log_level, "info").log_level,
			 MPS_LOG_INFO);
	ck_assert_int_eq(parse_ok(mps_config_log_level, "debug").log_level,
			 MPS_LOG_DEBUG);
}
END_TEST

START_TEST(test_log_level_bad_value_stays_silent)
{
	ck_assert_int_eq(parse_bad(mps_config_log_level,
				   "MPTCPSHIM_LOG_LEVEL",
				   "verbose")
				 .log_level,
			 MPS_LOG_NONE);
	ck_assert_int_eq(
		parse_bad(mps_config_log_level, "MPTCPSHIM_LOG_LEVEL", "DEBUG")
			.log_level,
		MPS_LOG_NONE);
}
END_TEST

START_TEST(test_log_file_keeps_the_pattern)
{
	ck_assert_str_eq(
		parse_ok(mps_config_log_file, "/tmp/shim-%p.log").log_file,
		"/tmp/shim-%p.log");
}
END_TEST

START_TEST(test_log_file_empty_uses_stderr)
{
	ck_assert_str_eq(
		parse_bad(mps_config_log_file, "MPTCPSHIM_LOG_FILE", "")
			.log_file,
		"");
}
END_TEST

START_TEST(test_capture_defaults_to_none_and_keeps_the_pattern)
{
	ck_assert_str_eq(parse_ok(mps_config_capture, NULL).capture, "");
	ck_assert_str_eq(parse_ok(mps_config_capture, "none").capture, "");
	ck_assert_str_eq(
		parse_ok(mps_config_capture, "/tmp/cap-%p.pcap").capture,
		"/tmp/cap-%p.pcap");
}
END_TEST

START_TEST(test_capture_empty_means_none)
{
	ck_assert_str_eq(
		parse_bad(mps_config_capture, "MPTCPSHIM_CAPTURE", "").capture,
		"");
}
END_TEST

START_TEST(test_buffers_take_bytes_and_suffixes)
{
	ck_assert_uint_eq(parse_ok(mps_config_rcvbuf, "65536").rcvbuf, 65536);
	ck_assert_uint_eq(parse_ok(mps_config_rcvbuf, "512K").rcvbuf,
			  512u << 10);
	ck_assert_uint_eq(parse_ok(mps_config_sndbuf, "16M").sndbuf, 16u << 20);
	ck_assert_uint_eq(parse_ok(mps_config_sndbuf, "256m").sndbuf,
			  256u << 20);
}
END_TEST

START_TEST(test_buffers_out_of_range_use_4m)
{
	ck_assert_uint_eq(
		parse_bad(mps_config_rcvbuf, "MPTCPSHIM_RCVBUF", "1000").rcvbuf,
		4u << 20);
	ck_assert_uint_eq(
		parse_bad(mps_config_rcvbuf, "MPTCPSHIM_RCVBUF", "1G").rcvbuf,
		4u << 20);
	ck_assert_uint_eq(
		parse_bad(mps_config_sndbuf, "MPTCPSHIM_SNDBUF", "257M").sndbuf,
		4u << 20);
	ck_assert_uint_eq(
		parse_bad(mps_config_sndbuf, "MPTCPSHIM_SNDBUF", "-4M").sndbuf,
		4u << 20);
	ck_assert_uint_eq(
		parse_bad(mps_config_sndbuf, "MPTCPSHIM_SNDBUF", "4MB").sndbuf,
		4u << 20);
}
END_TEST

START_TEST(test_convert_takes_all_and_none)
{
	ck_assert_int_eq(parse_ok(mps_config_convert, "all").convert,
			 MPS_CONVERT_ALL);
	ck_assert_int_eq(parse_ok(mps_config_convert, "none").convert,
			 MPS_CONVERT_NONE);
}
END_TEST

START_TEST(test_convert_parses_ipv4_rules)
{
	struct mps_config cfg = parse_ok(mps_config_convert,
					 "10.0.0.0/8,192.0.2.7:443,1.2.3.4");

	ck_assert_int_eq(cfg.convert, MPS_CONVERT_RULES);
	ck_assert_int_eq(cfg.nrules, 3);
	ck_assert_int_eq(cfg.rules[0].family, AF_INET);
	ck_assert_uint_eq(cfg.rules[0].prefix, 8);
	ck_assert_uint_eq(cfg.rules[0].port, 0);
	ck_assert_uint_eq(cfg.rules[1].prefix, 32);
	ck_assert_uint_eq(cfg.rules[1].port, 443);
	ck_assert_uint_eq(cfg.rules[2].addr[3], 4);
}
END_TEST

START_TEST(test_convert_parses_ipv6_rules_in_brackets)
{
	struct mps_config cfg =
		parse_ok(mps_config_convert, "[2001:db8::]/32:8080,[::1]");

	ck_assert_int_eq(cfg.nrules, 2);
	ck_assert_int_eq(cfg.rules[0].family, AF_INET6);
	ck_assert_uint_eq(cfg.rules[0].prefix, 32);
	ck_assert_uint_eq(cfg.rules[0].port, 8080);
	ck_assert_uint_eq(cfg.rules[1].prefix, 128);
	ck_assert_uint_eq(cfg.rules[1].addr[15], 1);
}
END_TEST

START_TEST(test_convert_one_bad_rule_rejects_the_list)
{
	static const char *const bad[] = {
		"10.0.0.0/33",
		"1.2.3.4:0",
		"1.2.3.4:65536",
		"[::1",
		"::1",
		"10.0.0.1,",
		",10.0.0.1",
		"10.0.0.1,,10.0.0.2",
		"host:80",
		"[::1]/129",
		"1.2.3.4/8/8",
		"ALL",
		"",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mps_config cfg = parse_bad(
			mps_config_convert, "MPTCPSHIM_CONVERT", bad[i]);

		ck_assert_int_eq(cfg.convert, MPS_CONVERT_ALL);
		ck_assert_int_eq(cfg.nrules, 0);
	}
}
END_TEST

START_TEST(test_load_reads_the_environment)
{
	struct mps_config cfg;

	setenv("MPTCPSHIM_VERSION", "0", 1);
	setenv("MPTCPSHIM_CONVERT", "127.0.0.0/8:80", 1);
	setenv("MPTCPSHIM_RCVBUF", "1M", 1);
	mps_config_load(&cfg);
	ck_assert_int_eq(cfg.version, 0);
	ck_assert_int_eq(cfg.convert, MPS_CONVERT_RULES);
	ck_assert_uint_eq(cfg.rules[0].port, 80);
	ck_assert_uint_eq(cfg.rcvbuf, 1u << 20);
	ck_assert_uint_eq(cfg.sndbuf, 4u << 20);
}
END_TEST

START_TEST(test_scheduler_takes_every_name)
{
	ck_assert_int_eq(parse_ok(mps_config_scheduler, NULL).sched,
			 MPS_SCHED_EARLIEST);
	ck_assert_int_eq(parse_ok(mps_config_scheduler, "earliest").sched,
			 MPS_SCHED_EARLIEST);
	ck_assert_int_eq(parse_ok(mps_config_scheduler, "roundrobin").sched,
			 MPS_SCHED_ROUNDROBIN);
	ck_assert_int_eq(parse_ok(mps_config_scheduler, "redundant").sched,
			 MPS_SCHED_REDUNDANT);
}
END_TEST

START_TEST(test_scheduler_bad_value_uses_earliest)
{
	struct mps_config cfg = parse_bad(
		mps_config_scheduler, "MPTCPSHIM_SCHEDULER", "fastest");

	ck_assert_int_eq(cfg.sched, MPS_SCHED_EARLIEST);
}
END_TEST

START_TEST(test_paths_take_names_and_addresses)
{
	struct mps_config cfg = parse_ok(
		mps_config_paths, "wlan0,10.0.0.1,[fd00::1],fd00::2,eth0.5");
	struct sockaddr_in v4 = {.sin_family = AF_INET};

	ck_assert_int_eq(cfg.npaths, 5);
	ck_assert_int_eq(cfg.paths[0].family, 0);
	ck_assert_str_eq(cfg.paths[0].ifname, "wlan0");
	ck_assert_int_eq(cfg.paths[1].family, AF_INET);
	ck_assert_int_eq(cfg.paths[2].family, AF_INET6);
	ck_assert_int_eq(cfg.paths[3].family, AF_INET6);
	ck_assert_str_eq(cfg.paths[4].ifname, "eth0.5");
	inet_pton(AF_INET, "10.0.0.1", &v4.sin_addr);
	ck_assert(mps_config_sel_match(
		&cfg.paths[1], "any", (struct sockaddr *)&v4));
	ck_assert(!mps_config_sel_match(
		&cfg.paths[0], "wlan1", (struct sockaddr *)&v4));
	ck_assert(mps_config_sel_match(&cfg.paths[0], "wlan0", NULL));
}
END_TEST

START_TEST(test_paths_bad_list_uses_every_interface)
{
	static const char *const bad[] = {
		"",
		"eth0,",
		",eth0",
		"a/b",
		"waytoolonginterfacename",
		"[1.2.3",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mps_config cfg =
			parse_bad(mps_config_paths, "MPTCPSHIM_PATHS", bad[i]);

		ck_assert_int_eq(cfg.npaths, 0);
	}
}
END_TEST

START_TEST(test_backup_takes_a_list_and_rejects_a_bad_one)
{
	struct mps_config cfg = parse_ok(mps_config_backup, "wwan0,10.1.2.3");

	ck_assert_int_eq(cfg.nbackup, 2);
	cfg = parse_bad(mps_config_backup, "MPTCPSHIM_BACKUP", "eth0,,eth1");
	ck_assert_int_eq(cfg.nbackup, 0);
}
END_TEST

START_TEST(test_max_subflows_takes_1_to_8)
{
	ck_assert_int_eq(parse_ok(mps_config_max_subflows, NULL).max_subflows,
			 4);
	ck_assert_int_eq(parse_ok(mps_config_max_subflows, "1").max_subflows,
			 1);
	ck_assert_int_eq(parse_ok(mps_config_max_subflows, "8").max_subflows,
			 8);
}
END_TEST

START_TEST(test_max_subflows_out_of_range_uses_4)
{
	static const char *const bad[] = {"0", "9", "-1", "two", ""};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(parse_bad(mps_config_max_subflows,
					   "MPTCPSHIM_MAX_SUBFLOWS",
					   bad[i])
					 .max_subflows,
				 4);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *simple = tcase_create("simple");
	TCase *convert = tcase_create("convert");

	tcase_add_test(simple, test_defaults_are_documented_values);
	tcase_add_test(simple, test_unset_variables_keep_defaults_silently);
	tcase_add_test(simple, test_disable_takes_0_and_1);
	tcase_add_test(simple, test_control_defaults_to_on_and_takes_0);
	tcase_add_test(simple, test_control_bad_value_uses_1);
	tcase_add_test(simple, test_direct_send_defaults_to_on_and_takes_0);
	tcase_add_test(simple, test_disable_bad_value_keeps_library_active);
	tcase_add_test(simple, test_version_takes_0_and_1);
	tcase_add_test(simple, test_version_bad_value_uses_1);
	tcase_add_test(simple, test_checksum_takes_0_and_1);
	tcase_add_test(simple, test_checksum_bad_value_uses_0);
	tcase_add_test(simple, test_log_level_takes_every_name);
	tcase_add_test(simple, test_log_level_bad_value_stays_silent);
	tcase_add_test(simple, test_log_file_keeps_the_pattern);
	tcase_add_test(simple, test_log_file_empty_uses_stderr);
	tcase_add_test(
		simple, test_capture_defaults_to_none_and_keeps_the_pattern);
	tcase_add_test(simple, test_capture_empty_means_none);
	tcase_add_test(simple, test_buffers_take_bytes_and_suffixes);
	tcase_add_test(simple, test_buffers_out_of_range_use_4m);
	suite_add_tcase(s, simple);

	tcase_add_test(convert, test_convert_takes_all_and_none);
	tcase_add_test(convert, test_convert_parses_ipv4_rules);
	tcase_add_test(convert, test_convert_parses_ipv6_rules_in_brackets);
	tcase_add_test(convert, test_convert_one_bad_rule_rejects_the_list);
	tcase_add_test(convert, test_load_reads_the_environment);
	tcase_add_test(convert, test_scheduler_takes_every_name);
	tcase_add_test(convert, test_scheduler_bad_value_uses_earliest);
	tcase_add_test(convert, test_paths_take_names_and_addresses);
	tcase_add_test(convert, test_paths_bad_list_uses_every_interface);
	tcase_add_test(convert, test_backup_takes_a_list_and_rejects_a_bad_one);
	tcase_add_test(convert, test_max_subflows_takes_1_to_8);
	tcase_add_test(convert, test_max_subflows_out_of_range_uses_4);
	suite_add_tcase(s, convert);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
