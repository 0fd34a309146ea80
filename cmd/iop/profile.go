package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
)

func profileCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "profile", Short: "Publish your profile and read anyone's"}
	var typ, name, loc, extra, image, thumb string
	var clearImage, noProp bool
	set := &cobra.Command{
		Use:   "set",
		Short: "Change your profile through the running agent (unset flags keep their value)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch client.ProfileChange
			f := cmd.Flags()
			if f.Changed("type") {
				ch.Type = &typ
			}
			if f.Changed("name") {
				ch.Name = &name
			}
			if f.Changed("location") {
				l, err := graph.ParseLocation(loc)
				if err != nil {
					return err
				}
				ch.Location = &l
			}
			if f.Changed("extra") {
				ch.Extra = &extra
			}
			var err error
			if image != "" {
				if ch.Image, err = readImage(image, graph.ProfileImage); err != nil {
					return err
				}
			}
			if thumb != "" {
				if ch.Thumbnail, err = readImage(thumb, graph.ThumbnailImage); err != nil {
					return err
				}
			}
			ch.ClearImage, ch.NoPropagation = clearImage, noProp
			lc, err := g.local()
			if err != nil {
				return err
			}
			v, err := lc.SetProfile(cmd.Context(), ch)
			if err != nil {
				return err
			}
			return g.print(v, func(w io.Writer) { printProfile(w, v) })
		},
	}
	set.Flags().StringVar(&typ, "type", "", "identity type, e.g. chat/user (fixed after the first profile)")
	set.Flags().StringVar(&name, "name", "", "display name (1-64 bytes)")
	set.Flags().StringVar(&loc, "location", "", "LAT,LON in degrees, or none")
	set.Flags().StringVar(&extra, "extra", "", "extra data, key=value pairs separated by ';' (≤ 200 bytes)")
	set.Flags().StringVar(&image, "image", "", "PNG or JPEG profile image (≤ 20 KiB); a thumbnail is made from it")
	set.Flags().StringVar(&thumb, "thumbnail", "", "PNG or JPEG thumbnail (≤ 5 KiB) instead of the generated one")
	set.Flags().BoolVar(&clearImage, "clear-image", false, "remove the image and thumbnail")
	set.Flags().BoolVar(&noProp, "no-propagation", false, "do not push this change to neighbour servers")

	var server, saveImage, saveThumb string
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Fetch and verify an identity's profile from a profile server",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := identity.ParseID(args[0])
			if err != nil {
				return err
			}
			return withServer(cmd.Context(), server, func(ctx context.Context, c *client.Conn) error {
				info, err := c.GetProfile(ctx, id, client.GetOptions{Image: saveImage != "", Thumbnail: saveThumb != "", Services: true})
				if err != nil {
					return err
				}
				if saveImage != "" && info.Image != nil {
					if err := os.WriteFile(saveImage, info.Image, 0o644); err != nil {
						return err
					}
				}
				if saveThumb != "" && info.Thumbnail != nil {
					if err := os.WriteFile(saveThumb, info.Thumbnail, 0o644); err != nil {
						return err
					}
				}
				out := profileInfoView(info)
				return g.print(out, func(w io.Writer) {
					if !info.Hosted {
						fmt.Fprintf(w, "%s is no longer hosted there", id)
						if info.TargetServer != nil {
							fmt.Fprintf(w, "; it moved to server %s", info.TargetServer)
						}
						fmt.Fprintln(w)
						return
					}
					printProfile(w, out.Profile)
					fmt.Fprintf(w, "online:   %v\nservices: %v\n", info.Online, info.Services)
				})
			})
		},
	}
	get.Flags().StringVar(&server, "server", "", "profile server address (multiaddr with /p2p/ID; env IOP_SERVER)")
	get.Flags().StringVar(&saveImage, "save-image", "", "write the profile image to this file")
	get.Flags().StringVar(&saveThumb, "save-thumbnail", "", "write the thumbnail to this file")
	cmd.AddCommand(set, get)
	return cmd
}

type profileInfoJSON struct {
	ID           identity.ID         `json:"id"`
	Hosted       bool                `json:"hosted"`
	TargetServer *identity.ID        `json:"target_server,omitempty"`
	Online       bool                `json:"online"`
	Services     []string            `json:"services"`
	Profile      *client.ProfileView `json:"profile,omitempty"`
}

func profileInfoView(info *client.ProfileInfo) profileInfoJSON {
	out := profileInfoJSON{ID: info.ID, Hosted: info.Hosted, TargetServer: info.TargetServer, Online: info.Online, Services: info.Services}
	if out.Services == nil {
		out.Services = []string{}
	}
	if info.Profile != nil {
		v := client.ViewOf(info.Profile)
		out.Profile = &v
	}
	return out
}

func readImage(path string, kind graph.ImageKind) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > int64(kind.Limit()) {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit: shrink it", path, st.Size(), kind.Limit())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !graph.IsPNGOrJPEG(data) {
		return nil, fmt.Errorf("%s is not a PNG or JPEG image", path)
	}
	return data, nil
}

func printProfile(w io.Writer, v *client.ProfileView) {
	loc := "none"
	if v.Location != nil {
		loc = fmt.Sprintf("%.6f,%.6f", v.Location.Lat, v.Location.Lon)
	}
	fmt.Fprintf(w, "id:       %s\ntype:     %s\nname:     %s\nlocation: %s\nextra:    %s\nsequence: %d\n",
		v.ID, v.Type, v.Name, loc, v.Extra, v.Sequence)
	if v.ImageHash != "" {
		fmt.Fprintf(w, "image:    %s\n", v.ImageHash)
	}
}
