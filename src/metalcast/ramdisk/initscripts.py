"""The deploy ramdisk's shell scripts: ``/init`` and the ``udhcpc`` hook.

Both run under busybox ``sh``.  ``/init`` loads the modules listed (in load order) in
``/etc/metalcast/modules``, brings up every Ethernet NIC that has carrier with
``udhcpc`` (or, booted from virtual media with the node's ``network_data``, sets the
static addresses of ``/etc/metalcast/static-net``), prints
``METALCAST-RAMDISK: net up <ip/prefix> dev=<nic> mac=<mac>``, runs
``python3 -I -S -m metalcast_agent`` and powers off when the agent exits (or the ACPI
power button is pressed: busybox ``acpid`` runs :data:`POWER_BUTTON_SCRIPT`), unless
it exits with status 3 after ``rescue``: then the machine stays up (dropbear serves
the rescue user) and prints ``METALCAST-RAMDISK: rescue mode``.  With
``metalcast.shell`` on the kernel command line it opens a console shell before powering
off (for debugging in the lab).  With ``metalcast.bench=dd:<url>`` (and
``metalcast.bench_token=<token>``, sent as the agent sends its token) it runs a plain
``wget -O - <url> | dd of=/dev/vda bs=1M conv=fsync`` instead of the agent and prints
``METALCAST-BENCH dd <bytes> <seconds>`` (bench/deploy.py's baseline for the agent's
image write).
"""

from __future__ import annotations

MODULES_LIST = "etc/metalcast/modules"
UDHCPC_HOOK = "etc/metalcast/udhcpc.script"

RAMDISK_INIT = r"""#!/bin/busybox sh
# /init of the metalcast deploy ramdisk (built by `metalcast ramdisk build`).
/bin/busybox --install -s /bin
export PATH=/usr/bin:/bin HOME=/root TERM=linux
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run/metalcast/net
mount -t devpts devpts /dev/pts

say() { echo "METALCAST-RAMDISK: $* uptime=$(cut -d' ' -f1 /proc/uptime)"; }
cmdline_has() {
    case " $(cat /proc/cmdline) " in *" $1 "* | *" $1="*) return 0 ;; esac
    return 1
}

load_modules() {
    while read -r name; do
        [ -n "$name" ] || continue
        insmod "/lib/modules/$name.ko" 2>/run/insmod.err ||
            say "insmod $name failed: $(cat /run/insmod.err)"
    done </etc/metalcast/modules
}

ethernet_nics() {
    for dev in /sys/class/net/*; do
        [ "${dev##*/}" = lo ] && continue
        [ "$(cat "$dev/type" 2>/dev/null)" = 1 ] && echo "${dev##*/}"
    done
}

has_carrier() { [ "$(cat "/sys/class/net/$1/carrier" 2>/dev/null)" = 1 ]; }

# Up to 5 s for every NIC to report link: e1000 takes a second or two.
wait_for_carrier() {
    tries=0
    while [ "$tries" -lt 50 ]; do
        missing=0
        for nic in "$@"; do has_carrier "$nic" || missing=1; done
        [ "$missing" = 0 ] && return
        usleep 100000
        tries=$((tries + 1))
    done
}

# udhcpc returns once it has a lease (then renews it in the background) or after
# 5 tries (then keeps trying in the background): the agent retries until it can
# reach metalcast.
start_network() {
    ip link set lo up
    nics=$(ethernet_nics)
    for nic in $nics; do ip link set "$nic" up; done
    wait_for_carrier $nics
    up=""
    for nic in $nics; do has_carrier "$nic" && up="$up $nic"; done
    if [ -z "$up" ]; then
        say "net down: no NIC with carrier (NICs:${nics:+ }$nics)"
        return
    fi
    for nic in $up; do
        udhcpc -i "$nic" -s /etc/metalcast/udhcpc.script -p "/run/udhcpc.$nic.pid" \
            -t 5 -T 2 -b >"/run/udhcpc.$nic.log" 2>&1 &
    done
    wait
    for nic in $up; do
        if [ -s "/run/metalcast/net/$nic" ]; then
            mac=$(cat "/sys/class/net/$nic/address")
            say "net up $(cat "/run/metalcast/net/$nic") dev=$nic mac=$mac"
        else
            say "net: no DHCP lease on $nic yet, still trying"
        fi
    done
}

nic_of_mac() {
    for dev in /sys/class/net/*; do
        [ "$(cat "$dev/address" 2>/dev/null)" = "$1" ] && echo "${dev##*/}" && return 0
    done
    return 1
}

# Virtual media with the node's network_data: its static addresses, routes and DNS
# servers (one per line, metalcast.boot.vmedia.static_network), no DHCP except on the
# NICs it says "dhcp" for.
start_static_network() {
    ip link set lo up
    : >/etc/resolv.conf
    while read -r kind what rest; do
        if [ "$kind" = dns ]; then
            echo "nameserver $what" >>/etc/resolv.conf
            continue
        fi
        nic=$(nic_of_mac "$what") || { say "net: no NIC has the MAC $what"; continue; }
        ip link set "$nic" up
        case "$kind" in
        addr)
            ip addr replace "$rest" dev "$nic"
            echo "$rest" >"/run/metalcast/net/$nic"
            say "net up $rest dev=$nic mac=$what (static)"
            ;;
        route)
            set -- $rest
            ip route replace "$1" via "$2" dev "$nic"
            ;;
        dhcp)
            udhcpc -i "$nic" -s /etc/metalcast/udhcpc.script -p "/run/udhcpc.$nic.pid" \
                -t 5 -T 2 -b >"/run/udhcpc.$nic.log" 2>&1
            ;;
        esac
    done <"$1"
}

say "init started, kernel $(uname -r)"
load_modules
# the ACPI power button (QEMU system_powerdown, IPMI "power soft") powers off cleanly
ls /dev/input/event* >/dev/null 2>&1 && acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid
hostname metalcast-ramdisk
if [ -f /etc/metalcast/static-net ]; then
    start_static_network /etc/metalcast/static-net
else
    start_network
fi
# metalcast.bench=dd:<url>: time a plain wget | dd onto /dev/vda instead of the agent
# (metalcast.bench_token=<token>: the token the boot server wants with the signed url)
bench_dd() {
    start=$(cut -d' ' -f1 /proc/uptime)
    wget -q --header "X-Metalcast-Agent-Token: $2" -O - "$1" |
        dd of=/dev/vda bs=1M conv=fsync 2>/run/bench-dd.err
    end=$(cut -d' ' -f1 /proc/uptime)
    bytes=$(sed -n 's/^\([0-9][0-9]*\) bytes.*/\1/p' /run/bench-dd.err)
    echo "METALCAST-BENCH dd ${bytes:-?} $(awk "BEGIN { print $end - $start }")"
}
bench=$(sed -n 's/.*metalcast\.bench=dd:\([^ ]*\).*/\1/p' /proc/cmdline)
bench_token=$(sed -n 's/.*metalcast\.bench_token=\([^ ]*\).*/\1/p' /proc/cmdline)
cd /
if [ -n "$bench" ]; then
    bench_dd "$bench" "$bench_token"
    status=$?
else
    say "starting metalcast-agent"
    python3 -I -S -m metalcast_agent
    status=$?
fi
say "metalcast-agent exited with status $status"
# status 3: the agent set up rescue (a user, dropbear); the machine stays up for the
# tenant until metalcast powers it off through its BMC (unrescue)
if [ "$status" = 3 ]; then
    say "rescue mode: SSH is open for the rescue user"
    while :; do sleep 3600; done
fi
if cmdline_has metalcast.shell; then
    say "metalcast.shell: console shell, exit it to power off"
    setsid cttyhack sh
fi
sync
say "powering off"
poweroff -f
while :; do sleep 3600; done
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
# udhcpc hook of the metalcast deploy ramdisk: apply the lease to $interface.
state=/run/metalcast/net
mkdir -p "$state"
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    rm -f "$state/$interface"
    ;;
bound | renew)
    address="$ip/${mask:-24}"
    [ "$(cat "$state/$interface" 2>/dev/null)" = "$address" ] || ip -4 addr flush dev "$interface"
    ip addr replace "$address" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    metric=$(cat "/sys/class/net/$interface/ifindex")
    for gateway in $router; do
        ip route replace default via "$gateway" dev "$interface" metric "$metric"
        break
    done
    if [ -n "$dns" ]; then
        {
            [ -n "$domain" ] && echo "search $domain"
            for server in $dns; do echo "nameserver $server"; done
        } >/etc/resolv.conf
    fi
    [ -n "$hostname" ] && hostname "$hostname"
    echo "$address" >"$state/$interface"
    ;;
esac
exit 0
"""

HOSTS = "127.0.0.1 localhost\n::1 localhost\n"
NSSWITCH = "hosts: files dns\npasswd: files\ngroup: files\n"
PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
GROUP = "root:x:0:\n"

#: busybox acpid runs <conf dir>/PWRF/00000080 when the power button is pressed
POWER_BUTTON_HANDLER = "etc/acpi/PWRF/00000080"
POWER_BUTTON_SCRIPT = """#!/bin/sh
echo "METALCAST-{who}: power button pressed, powering off" >/dev/console
sync
poweroff -f
"""
