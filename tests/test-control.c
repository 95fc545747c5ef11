/*
 * test-control.c: the control protocol's pure parts (ctlproto.c) and the
 * counters' folding of core stats (mib.c).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctlproto.h"
#include "mib.h"

/* Parse line, expecting success. */
static struct mps_ctl_req parse_ok(const char *line)
{
	struct mps_ctl_req req;
	const char *why = NULL;

	ck_assert_msg(mps_ctl_parse_request(line, &req, &why) == 0,
		      "%s: %s",
		      line,
		      why);
	return req;
}

static void parse_bad(const char *line)
{
	struct mps_ctl_req req;
	const char *why = NULL;

	ck_assert_int_eq(mps_ctl_parse_request(line, &req, &why), -EINVAL);
	ck_assert_ptr_nonnull(why);
}

START_TEST(test_status_and_counters_take_no_argument)
{
	ck_assert_int_eq(parse_ok("status").verb, MPS_CTL_STATUS);
	ck_assert_int_eq(parse_ok("  counters ").verb, MPS_CTL_COUNTERS);
	parse_bad("status now");
	parse_bad("");
	parse_bad("stat");
}
END_TEST

START_TEST(test_backup_takes_an_interface_or_an_address)
{
	struct mps_ctl_req r = parse_ok("backup wlan0 on");
	uint8_t v4[4] = {10, 0, 0, 1};

	ck_assert_int_eq(r.verb, MPS_CTL_BACKUP);
	ck_assert_int_eq(r.sel.family, 0);
	ck_assert_str_eq(r.sel.ifname, "wlan0");
	ck_assert(r.on);
	r = parse_ok("backup 10.0.0.1 off");
	ck_assert_int_eq(r.sel.family, AF_INET);
	ck_assert_mem_eq(r.sel.addr, v4, 4);
	ck_assert(!r.on);
	r = parse_ok("backup [fd00::1] on");
	ck_assert_int_eq(r.sel.family, AF_INET6);
	parse_bad("backup wlan0");
	parse_bad("backup wlan0 yes");
	parse_bad("backup a/b on");
	parse_bad("backup averyveryverylongname on");
}
END_TEST

START_TEST(test_addr_takes_add_or_del_and_an_address_only)
{
	ck_assert_int_eq(parse_ok("addr add 10.1.2.3").verb, MPS_CTL_ADDR_ADD);
	ck_assert_int_eq(parse_ok("addr del fd00::2").verb, MPS_CTL_ADDR_DEL);
	parse_bad("addr del eth0");
	parse_bad("addr remove 10.1.2.3");
	parse_bad("addr add");
}
END_TEST

START_TEST(test_scheduler_takes_the_three_names)
{
	ck_assert_int_eq(parse_ok("scheduler earliest").sched,
			 MPS_SCHED_EARLIEST);
	ck_assert_int_eq(parse_ok("scheduler roundrobin").sched,
			 MPS_SCHED_ROUNDROBIN);
	ck_assert_int_eq(parse_ok("scheduler redundant").sched,
			 MPS_SCHED_REDUNDANT);
	parse_bad("scheduler fastest");
	parse_bad("scheduler");
}
END_TEST

START_TEST(test_a_line_past_the_limit_is_refused)
{
	char line[MPS_CTL_LINE_MAX + 10];

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "status ", 7);
	parse_bad(line);
}
END_TEST

START_TEST(test_buffer_never_passes_its_bound)
{
	struct mps_ctl_buf b;

	mps_ctl_buf_init(&b, 10);
	ck_assert_int_eq(mps_ctl_printf(&b, "%s", "12345"), 0);
	ck_assert_int_eq(mps_ctl_printf(&b, "%s", "123456"), -ENOBUFS);
	ck_assert_uint_eq(b.len, 5);
	ck_assert_int_eq(mps_ctl_printf(&b, "%s", "12345"), 0);
	mps_ctl_buf_consume(&b, 3);
	ck_assert_uint_eq(b.len, 7);
	ck_assert_mem_eq(b.data, "4512345", 7);
	mps_ctl_buf_free(&b);
}
END_TEST

/* A connection of two subflows, as loop.c would describe it. */
static struct mps_ctl_conn two_subflows(void)
{
	struct mps_ctl_conn c;

	memset(&c, 0, sizeof(c));
	c.id = 3;
	c.mode = "mptcp";
	c.role = "client";
	c.has_core = true;
	c.state = MPS_CONN_ESTABLISHED;
	strcpy(c.local, "10.0.0.1:4000");
	strcpy(c.peer, "10.0.0.2:80");
	c.local_token = 0x12345678;
	c.version = 1;
	c.sched = MPS_SCHED_REDUNDANT;
	c.bytes_out = 1000;
	c.nsf = 2;
	c.sf[0].state = MPS_SF_ESTABLISHED;
	strcpy(c.sf[0].ifname, "eth0");
	c.sf[0].has_tcp_info = true;
	c.sf[0].rtt_us = 1500;
	c.sf[1].num = 1;
	c.sf[1].state = MPS_SF_JOINING;
	c.sf[1].join = true;
	c.sf[1].backup = true;
	return c;
}

START_TEST(test_a_connection_gives_one_line_and_one_per_subflow)
{
	struct mps_ctl_conn c = two_subflows();
	struct mps_ctl_buf b;

	mps_ctl_buf_init(&b, MPS_CTL_REPLY_MAX);
	ck_assert_int_eq(mps_ctl_put_conn(&b, &c), 0);
	ck_assert_ptr_nonnull(strstr(b.data,
				     "conn id=3 mode=mptcp role=client "
				     "local=10.0.0.1:4000 peer=10.0.0.2:80 "
				     "bytes_in=0 bytes_out=1000 "
				     "state=established version=1 "
				     "checksum=0 scheduler=redundant "
				     "local_token=0x12345678 "));
	ck_assert_ptr_nonnull(strstr(b.data,
				     "subflow conn=3 num=0 "
				     "state=established join=0 local=- "
				     "remote=- ifname=eth0 backup=0"));
	ck_assert_ptr_nonnull(strstr(b.data, " rtt_us=1500 cwnd_bytes=0\n"));
	ck_assert_ptr_nonnull(strstr(b.data,
				     "subflow conn=3 num=1 state=joining "
				     "join=1 local=- remote=- ifname=- "
				     "backup=1 peer_backup=0 "));
	ck_assert_int_eq(b.data[b.len - 1], '\n');
	mps_ctl_buf_free(&b);
}
END_TEST

START_TEST(test_a_connection_that_does_not_fit_leaves_nothing)
{
	struct mps_ctl_conn c = two_subflows();
	struct mps_ctl_buf b;

	mps_ctl_buf_init(&b, 300);
	ck_assert_int_eq(mps_ctl_printf(&b, "process pid=1\n"), 0);
	ck_assert_int_eq(mps_ctl_put_conn(&b, &c), -ENOBUFS);
	ck_assert_uint_eq(b.len, strlen("process pid=1\n"));
	mps_ctl_buf_free(&b);
}
END_TEST

START_TEST(test_relay_connections_have_no_core_fields)
{
	struct mps_ctl_conn c;
	struct mps_ctl_buf b;

	memset(&c, 0, sizeof(c));
	c.mode = "relay";
	c.role = "client";
	c.bytes_in = 7;
	mps_ctl_buf_init(&b, 4096);
	ck_assert_int_eq(mps_ctl_put_conn(&b, &c), 0);
	ck_assert_str_eq(b.data,
			 "conn id=0 mode=relay role=client local=- peer=- "
			 "bytes_in=7 bytes_out=0\n");
	mps_ctl_buf_free(&b);
}
END_TEST

START_TEST(test_split_gives_the_type_and_the_pairs)
{
	char line[] = "subflow conn=1 num=0 ifname=eth0 flag\n";
	struct mps_ctl_kv kv[8];
	const char *type;

	ck_assert_int_eq(mps_ctl_split(line, &type, kv, 8), 4);
	ck_assert_str_eq(type, "subflow");
	ck_assert_str_eq(kv[0].key, "conn");
	ck_assert_str_eq(kv[0].value, "1");
	ck_assert_str_eq(kv[2].value, "eth0");
	ck_assert_str_eq(kv[3].key, "flag");
	ck_assert_str_eq(kv[3].value, "");
	line[0] = '\0';
	ck_assert_int_eq(mps_ctl_split(line, &type, kv, 8), -EINVAL);
}
END_TEST

START_TEST(test_addresses_print_with_their_port)
{
	struct sockaddr_in v4 = {.sin_family = AF_INET,
				 .sin_port = htons(80)};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6,
				  .sin6_port = htons(443)};
	char buf[MPS_CTL_ADDR_MAX];

	inet_pton(AF_INET, "192.0.2.1", &v4.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
	ck_assert_str_eq(mps_ctl_addr_str((struct sockaddr *)&v4, buf, 64),
			 "192.0.2.1:80");
	ck_assert_str_eq(mps_ctl_addr_str((struct sockaddr *)&v6, buf, 64),
			 "[2001:db8::1]:443");
	ck_assert_str_eq(mps_ctl_addr_str(NULL, buf, 64), "-");
}
END_TEST

START_TEST(test_directory_is_under_xdg_or_tmp)
{
	char dir[MPS_CTL_PATH_MAX];
	char path[MPS_CTL_PATH_MAX];

	ck_assert_int_eq(mps_ctl_dir(dir, sizeof(dir), "/run/user/5", 5), 0);
	ck_assert_str_eq(dir, "/run/user/5/mptcpshim");
	ck_assert_int_eq(mps_ctl_dir(dir, sizeof(dir), NULL, 1000), 0);
	ck_assert_str_eq(dir, "/tmp/mptcpshim-1000");
	/* a relative XDG_RUNTIME_DIR is not to be trusted */
	ck_assert_int_eq(mps_ctl_dir(dir, sizeof(dir), "run", 7), 0);
	ck_assert_str_eq(dir, "/tmp/mptcpshim-7");
	ck_assert_int_eq(mps_ctl_sock_path(path, sizeof(path), dir, 42), 0);
	ck_assert_str_eq(path, "/tmp/mptcpshim-7/42.sock");
	ck_assert_int_eq(mps_ctl_dir(dir, 10, "/run/user/5", 5), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_directory_must_be_private)
{
	char dir[] = "/tmp/test-control.XXXXXX";
	char link[sizeof(dir) + 8];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0700), 0);
	ck_assert_int_eq(mps_ctl_check_dir(dir, geteuid()), 0);
	ck_assert_int_eq(mps_ctl_check_dir(dir, geteuid() + 1), -EPERM);
	ck_assert_int_eq(chmod(dir, 0750), 0);
	ck_assert_int_eq(mps_ctl_check_dir(dir, geteuid()), -EPERM);
	ck_assert_int_eq(chmod(dir, 0700), 0);
	snprintf(link, sizeof(link), "%s.lnk", dir);
	ck_assert_int_eq(symlink(dir, link), 0);
	ck_assert_int_eq(mps_ctl_check_dir(link, geteuid()), -EPERM);
	unlink(link);
	rmdir(dir);
	ck_assert_int_eq(mps_ctl_check_dir(dir, geteuid()), -ENOENT);
}
END_TEST

START_TEST(test_core_stats_fold_into_counters_by_reason)
{
	uint64_t v[MPS_MIB_COUNT] = {0};
	struct mps_conn_stats st;

	memset(&st, 0, sizeof(st));
	st.bytes_in = 100;
	st.reinjected_bytes = 5;
	st.fallbacks = 1;
	mps_mib_add_stats(v, &st, true);
	ck_assert_uint_eq(v[MPS_MIB_BYTES_IN], 100);
	ck_assert_uint_eq(v[MPS_MIB_REINJECTED_BYTES], 5);
	ck_assert_uint_eq(v[MPS_MIB_FALLBACK_FIRST], 1);
	st.mp_fail = 1;
	mps_mib_add_stats(v, &st, true);
	ck_assert_uint_eq(v[MPS_MIB_FALLBACK_MP_FAIL], 1);
	ck_assert_uint_eq(v[MPS_MIB_MP_FAIL], 1);
	ck_assert_uint_eq(v[MPS_MIB_BYTES_IN], 200);
	st.mp_fail = 0;
	mps_mib_add_stats(v, &st, false);
	ck_assert_uint_eq(v[MPS_MIB_FALLBACK_OTHER], 1);
}
END_TEST

START_TEST(test_every_counter_has_a_distinct_name)
{
	int i, j;

	for (i = 0; i < MPS_MIB_COUNT; i++) {
		ck_assert_ptr_nonnull(mps_mib_name((enum mps_mib_id)i));
		for (j = 0; j < i; j++)
			ck_assert_str_ne(mps_mib_name((enum mps_mib_id)i),
					 mps_mib_name((enum mps_mib_id)j));
	}
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *req = tcase_create("requests");
	TCase *rep = tcase_create("replies");

	tcase_add_test(req, test_status_and_counters_take_no_argument);
	tcase_add_test(req, test_backup_takes_an_interface_or_an_address);
	tcase_add_test(req, test_addr_takes_add_or_del_and_an_address_only);
	tcase_add_test(req, test_scheduler_takes_the_three_names);
	tcase_add_test(req, test_a_line_past_the_limit_is_refused);
	tcase_add_test(req, test_directory_is_under_xdg_or_tmp);
	tcase_add_test(req, test_directory_must_be_private);
	suite_add_tcase(s, req);

	tcase_add_test(rep, test_buffer_never_passes_its_bound);
	tcase_add_test(rep,
		       test_a_connection_gives_one_line_and_one_per_subflow);
	tcase_add_test(rep, test_a_connection_that_does_not_fit_leaves_nothing);
	tcase_add_test(rep, test_relay_connections_have_no_core_fields);
	tcase_add_test(rep, test_split_gives_the_type_and_the_pairs);
	tcase_add_test(rep, test_addresses_print_with_their_port);
	tcase_add_test(rep, test_core_stats_fold_into_counters_by_reason);
	tcase_add_test(rep, test_every_counter_has_a_distinct_name);
	suite_add_tcase(s, rep);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(control_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
