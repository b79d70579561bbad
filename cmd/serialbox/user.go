package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"serialbox/serializer"
	"serialbox/store"
)

// firstSupervisor creates the supervisor "admin" when the appliance has no operator
// at all. A password from the configuration is never logged; a drawn one is logged
// once, since nobody could log in otherwise.
func firstSupervisor(ctx context.Context, accounts *serializer.Accounts, password, dataDir string, logger *slog.Logger) error {
	given := password != ""
	pw, err := accounts.FirstSupervisor(ctx, password)
	if err != nil {
		return fmt.Errorf("create the first supervisor: %s", serializer.ErrorMessage(err))
	}
	switch {
	case pw == "":
	case given:
		logger.Info("created supervisor admin with the password from admin_password / SERIALBOX_ADMIN_PASSWORD")
	default:
		// The password goes to a file only the appliance's user can read, never to the
		// log, which travels further (journald, log shippers, support tickets).
		file := filepath.Join(dataDir, adminPasswordFile)
		if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
			return fmt.Errorf("write the first supervisor's password: %w", err)
		}
		logger.Warn("created supervisor admin: its password is in "+file+"; log in at the operator page, then delete the file (or change the password with 'serialbox user passwd admin')",
			"name", "admin", "file", file)
	}
	return nil
}

// adminPasswordFile holds the generated password of the first supervisor, in the data folder.
const adminPasswordFile = "admin-password"

// runUser manages operator accounts: add, list, passwd, key.
func runUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		userUsage(stderr)
		return errUsage
	}
	sub, args := args[0], args[1:]
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	load := dataFlags(fs)
	var role *string
	var withKey, pwStdin *bool
	switch sub {
	case "add":
		role = fs.String("role", "operator", "operator or supervisor")
		withKey = fs.Bool("api-key", false, "also create an API key for integrations (printed once)")
		pwStdin = fs.Bool("password-stdin", false, "read the password from standard input instead of drawing one")
	case "passwd":
		pwStdin = fs.Bool("password-stdin", false, "read the password from standard input instead of drawing one")
	case "key", "list":
	default:
		fmt.Fprintf(stderr, "serialbox user: unknown command %q\n\n", sub)
		userUsage(stderr)
		return errUsage
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if sub != "list" && name == "" {
		fmt.Fprintf(stderr, "serialbox user %s: NAME is required\n", sub)
		return errUsage
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, filepath.Join(cfg.DataDir, "serialbox.db"), store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	accounts := serializer.NewAccounts(db)
	const by = "serialbox user"

	password := func() (string, bool, error) {
		if pwStdin == nil || !*pwStdin {
			return serializer.NewPassword(), true, nil
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, err
		}
		return strings.TrimRight(line, "\r\n"), false, nil
	}
	switch sub {
	case "add":
		r, err := serializer.ParseRole(*role)
		if err != nil {
			return errors.New(serializer.ErrorMessage(err))
		}
		pw, drawn, err := password()
		if err != nil {
			return err
		}
		o, key, err := accounts.AddOperator(ctx, name, r, pw, *withKey, by)
		if err != nil {
			return errors.New(serializer.ErrorMessage(err))
		}
		fmt.Fprintf(stdout, "added %s %s\n", o.Role, o.Name)
		if drawn {
			fmt.Fprintf(stdout, "password: %s\n", pw)
		}
		if key != "" {
			fmt.Fprintf(stdout, "api key: %s\n", key)
		}
		if drawn || key != "" {
			fmt.Fprintln(stdout, "(shown only this once)")
		}
	case "passwd":
		pw, drawn, err := password()
		if err != nil {
			return err
		}
		if err := accounts.SetPassword(ctx, name, pw, by); err != nil {
			return errors.New(serializer.ErrorMessage(err))
		}
		fmt.Fprintf(stdout, "new password set for %s; their sessions are ended\n", name)
		if drawn {
			fmt.Fprintf(stdout, "password: %s\n(shown only this once)\n", pw)
		}
	case "key":
		key, err := accounts.NewOperatorAPIKey(ctx, name, by)
		if err != nil {
			return errors.New(serializer.ErrorMessage(err))
		}
		fmt.Fprintf(stdout, "api key: %s\n(shown only this once; the previous key no longer works)\n", key)
	case "list":
		ops, err := accounts.Operators(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tAPI KEY\tSTATE\tCREATED")
		for _, o := range ops {
			state := "active"
			switch {
			case o.Disabled:
				state = "disabled"
			case o.LockedUntil.After(db.Now()):
				state = "locked until " + o.LockedUntil.Local().Format("15:04")
			}
			key := "no"
			if o.APIKey {
				key = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Name, o.Role, key, state, o.CreatedAt.Local().Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	}
	return nil
}

func userUsage(w io.Writer) {
	fmt.Fprint(w, `usage:
  serialbox user add NAME --role operator|supervisor [--api-key] [--password-stdin] [--config FILE] [--data DIR]
  serialbox user passwd NAME [--password-stdin] [--config FILE] [--data DIR]
  serialbox user key NAME [--config FILE] [--data DIR]
  serialbox user list [--config FILE] [--data DIR]
`)
}
